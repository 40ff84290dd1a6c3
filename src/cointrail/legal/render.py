"""Letters: the template's subject and body rendered in the shared layout, as HTML and PDF
(WeasyPrint). The draft carries a "DRAFT - NOT APPROVED" banner; the approved letter names
its approver and drafter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2
from markupsafe import Markup

from cointrail.errors import InputError, StoreError
from cointrail.legal.template import Template, environment, layout_text


def _failed(template: Template, exc: jinja2.TemplateError) -> InputError:
    return InputError(f"template {template.id} v{template.version} ({template.source}) does not "
                      f"render: {exc}; correct the template text (a field it names may not "
                      "exist in this template)")


def render_subject(template: Template, context: Mapping[str, Any]) -> str:
    try:
        text = environment().from_string(template.subject).render(**context)
    except jinja2.TemplateError as exc:
        raise _failed(template, exc) from exc
    return " ".join(text.split())


def render_html(template: Template, context: Mapping[str, Any], *, approved: bool) -> str:
    env = environment()
    subject = render_subject(template, context)
    try:
        body = env.from_string(template.body).render(**context)
        return env.from_string(layout_text()).render(
            **context, subject=subject, body=Markup(body), approved=approved)
    except jinja2.TemplateError as exc:
        raise _failed(template, exc) from exc


def html_to_pdf(html: str) -> bytes:
    """PDF bytes of an HTML letter (WeasyPrint; no network fetches: the letter is
    self-contained)."""
    from weasyprint import HTML  # type: ignore[import-untyped]

    pdf = HTML(string=html, base_url=None).write_pdf()
    if pdf is None:  # pragma: no cover - write_pdf returns bytes without a target
        raise StoreError("WeasyPrint returned no PDF")
    return bytes(pdf)
