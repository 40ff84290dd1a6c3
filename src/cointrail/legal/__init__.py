"""Legal requests: preservation, production, freeze, MLA annex and emergency requests drafted
from a case's trace findings (LEGAL.md §2-3; ADR 0004 for the case folder).

    from cointrail.legal import draft_request, approve, record_check, due
    doc = draft_request(case, "preservation", "F0001", "Binance", fields, store_root=store)

Templates are versioned YAML data (``legal/templates/``); the contact directory is the
agency's YAML (``<store>/contacts.yaml``). Nothing is ever sent by the software.
"""

from cointrail.legal.contacts import ContactDirectory, import_contacts, load_contacts
from cointrail.legal.drafting import RequestHeldError, draft_request, record_check
from cointrail.legal.template import KINDS, Template, load_template, load_templates
from cointrail.legal.workflow import approve, due, load_request, set_status

__all__ = [
    "KINDS",
    "ContactDirectory",
    "RequestHeldError",
    "Template",
    "approve",
    "draft_request",
    "due",
    "import_contacts",
    "load_contacts",
    "load_request",
    "load_template",
    "load_templates",
    "record_check",
    "set_status",
]
