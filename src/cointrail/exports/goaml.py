"""goAML XML of a case through a per-FIU mapping profile, validated against cointrail's goAML
4.0 subset schema (``data/goaml/cointrail-goaml-4.0.xsd``; LEGAL.md §4.3).

One goAML ``transaction`` per traced flow between two addresses: the wallet address is the
account (``t_account.account``), an attributed service is the institution with
``non_bank_institution`` true, the txid is the ``transactionnumber``, the chain goes to
``transmode_comment``, and the coin amount goes to the foreign-currency block (exact decimal
text); ``amount_local`` is 0 because a case holds no fiat valuation. A profile (YAML data file)
sets the FIU's codes and its comment convention, e.g. FIU Germany's "KryptoTx".

Hand-written (ElementTree): there is no goAML library; the schema checks the result.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from cointrail.errors import InputError, Problem, ValidationError
from cointrail.exports.options import ExportOptions, UseRestrictions
from cointrail.reporting.facts import case_meta, plain_coin_text, services, trace_findings

SCHEMA_FILE = "data/goaml/cointrail-goaml-4.0.xsd"
PROFILE_DIR = "data/goaml"


@dataclass(frozen=True, slots=True)
class GoamlProfile:
    """An FIU's goAML mapping (see data/goaml/generic.yaml for every field)."""

    name: str
    title: str
    version: str
    rentity_id: int
    submission_code: str
    report_code: str
    currency_code_local: str
    address_type: str
    transmode_code: str
    funds_code: str
    unknown_country: str
    currency_codes: Mapping[str, str]
    narrative_prefix: str
    comment_style: str  # "plain" or "hash"
    comment_separator: str
    indicators: tuple[str, ...]
    action: str

    def comment(self, entries: list[tuple[str, str]]) -> str:
        if self.comment_style == "hash":
            parts = [f"#{k} {v}" for k, v in entries]
        else:
            parts = [f"{k}: {v}" for k, v in entries]
        return self.comment_separator.join(parts)


def profile_names() -> list[str]:
    folder = files("cointrail.exports").joinpath(PROFILE_DIR)
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def load_profile(name_or_path: str) -> GoamlProfile:
    """A packaged profile by name (``generic``, ``de-kryptotx``) or a YAML file path."""
    path = Path(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")) and path.is_file():
        data, source = path.read_bytes(), str(path)
    else:
        if name_or_path not in profile_names():
            raise InputError(f"goAML profile {name_or_path!r} is not known; use one of "
                             f"{', '.join(profile_names())} or a path to a profile YAML file")
        source = f"{PROFILE_DIR}/{name_or_path}.yaml"
        data = files("cointrail.exports").joinpath(source).read_bytes()
    doc = yaml.safe_load(data)
    required = ("name", "title", "version", "rentity_id", "submission_code", "report_code",
                "currency_code_local", "address_type", "transmode_code", "funds_code",
                "unknown_country", "currency_codes", "comments", "indicators")
    missing = [k for k in required if not isinstance(doc, dict) or doc.get(k) is None]
    if missing:
        raise ValidationError(f"goAML profile {source} is incomplete",
                              [Problem(source, None, f"missing '{k}'") for k in missing])
    comments = doc["comments"]
    return GoamlProfile(
        name=str(doc["name"]), title=str(doc["title"]), version=str(doc["version"]),
        rentity_id=int(doc["rentity_id"]), submission_code=str(doc["submission_code"]),
        report_code=str(doc["report_code"]),
        currency_code_local=str(doc["currency_code_local"]),
        address_type=str(doc["address_type"]), transmode_code=str(doc["transmode_code"]),
        funds_code=str(doc["funds_code"]), unknown_country=str(doc["unknown_country"]),
        currency_codes={str(k): str(v) for k, v in doc["currency_codes"].items()},
        narrative_prefix=str(doc.get("narrative_prefix") or ""),
        comment_style=str(comments.get("style", "plain")),
        comment_separator=str(comments.get("separator", "; ")),
        indicators=tuple(str(i) for i in doc["indicators"]),
        action=str(doc.get("action") or ""))


def schema_path() -> Path:
    return Path(str(files("cointrail.exports").joinpath(SCHEMA_FILE)))


def validate_goaml(xml: bytes) -> None:
    """Raise ValidationError listing every place where `xml` breaks the goAML subset schema."""
    import xmlschema

    schema = xmlschema.XMLSchema(str(schema_path()))
    try:
        errors = list(schema.iter_errors(xml.decode("utf-8")))
    except (ET.ParseError, xmlschema.XMLSchemaException) as exc:
        raise ValidationError("the goAML document is not well-formed XML",
                              [Problem("goaml.xml", None, str(exc))]) from exc
    if errors:
        raise ValidationError(
            "the goAML document does not validate against cointrail-goaml-4.0.xsd",
            [Problem(f"goaml.xml {e.path or '/'}", None, str(e.reason)) for e in errors])


def _iso(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if text is not None:
        child.text = text
    return child


def build_goaml(snapshot: Mapping[str, Any], options: ExportOptions,
                restrictions: UseRestrictions) -> bytes:
    """The goAML report as XML bytes, validated; ValidationError when it cannot be."""
    profile = load_profile(options.goaml_profile)
    case = case_meta(snapshot)
    authority = case.get("authority") or {}
    service_of = {a: s for s in services(snapshot) for a in s.addresses}
    flows = []
    for t in trace_findings(snapshot):
        addr = {n.key: n.address for n in t.nodes}
        addr |= {p.key: p.address for p in t.endpoints if p.address}
        for f in t.flows:
            if addr.get(f.from_key) and addr.get(f.to_key):
                flows.append((t, f, str(addr[f.from_key]), str(addr[f.to_key])))
    problems = [Problem("case", None, "no traced flow between two addresses: a goAML report "
                        "needs at least one transaction")] if not flows else []
    problems += [Problem("block_times", None, f"no header time for block {h}; export through "
                         "the CLI (it reads them from the chain store) or pass block_times")
                 for h in sorted({f.height for _, f, _, _ in flows} - set(options.block_times))]
    if problems:
        raise ValidationError("cannot write the goAML report", problems)

    root = ET.Element("report")
    _sub(root, "rentity_id", str(profile.rentity_id))
    _sub(root, "submission_code", profile.submission_code)
    _sub(root, "report_code", profile.report_code)
    _sub(root, "entity_reference", restrictions.case_reference)
    submitted = datetime.fromisoformat(restrictions.created_at.replace("Z", "+00:00"))
    _sub(root, "submission_date", submitted.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    _sub(root, "currency_code_local", profile.currency_code_local)
    person = _sub(root, "reporting_person")
    investigators = [str(i) for i in case.get("investigators") or []]
    _sub(person, "last_name", investigators[0] if investigators
         else restrictions.originating_authority)
    if authority.get("email"):
        _sub(person, "email", str(authority["email"]))
    if authority.get("unit"):
        _sub(person, "occupation", str(authority["unit"]))
    location = _sub(root, "location")
    _sub(location, "address_type", profile.address_type)
    _sub(location, "address", restrictions.originating_authority)
    _sub(location, "country_code", restrictions.originating_state)
    narrative = " ".join(filter(None, [
        profile.narrative_prefix, f"Case {restrictions.case_reference}: {case.get('title', '')}.",
        str(case.get("facts") or ""), restrictions.text()]))
    _sub(root, "reason", narrative[:4000])
    if profile.action:
        _sub(root, "action", profile.action)
    for t, f, payer, payee in flows:
        tx = _sub(root, "transaction")
        _sub(tx, "transactionnumber", f.txid)
        _sub(tx, "internal_ref_number", f"{t.id}:{f.from_key}>{f.to_vout}")
        _sub(tx, "transaction_description",
             f"{t.chain} transfer traced in finding {t.id} ({t.direction} {t.model} trace)")
        _sub(tx, "date_transaction", _iso(options.block_times[f.height]))
        _sub(tx, "transmode_code", profile.transmode_code)
        _sub(tx, "transmode_comment", f"{t.chain}/{t.network}")
        _sub(tx, "amount_local", "0")
        currency = profile.currency_codes.get(t.coin.ticker, t.coin.ticker)
        coins = plain_coin_text(f.amount, t.coin.decimals)
        for side, address in (("from", payer), ("to", payee)):
            block = _sub(tx, f"t_{side}")
            _sub(block, f"{side}_funds_code", profile.funds_code)
            fx = _sub(block, f"{side}_foreign_currency")
            _sub(fx, "foreign_currency_code", currency)
            _sub(fx, "foreign_amount", coins)
            account = _sub(block, f"{side}_account")
            service = service_of.get(address)
            if service is not None:
                _sub(account, "institution_name", service.legal_entity or service.label)
                _sub(account, "non_bank_institution", "true")
            _sub(account, "account", address)
            entries = [(f"{side}_account", address), ("chain", t.chain)]
            if service is not None:
                entries.append(("service", f"{service.label} ({service.category})"))
            _sub(account, "comments", profile.comment(entries))
            country = (service.jurisdiction if service is not None and service.jurisdiction
                       else profile.unknown_country)
            _sub(block, f"{side}_country", country)
        _sub(tx, "comments", profile.comment([
            ("transactionnumber", f.txid), ("from_output", f.from_key),
            ("to_output", f.to_key), ("block_height", str(f.height)),
            ("amount_sat", str(f.amount)), ("currency", t.coin.ticker)]))
    indicators = _sub(root, "report_indicators")
    for code in profile.indicators:
        _sub(indicators, "indicator", code)
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    xml = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
           + f"<!-- cointrail goAML export, profile {profile.name} v{profile.version}; "
             f"{restrictions.tlp.label}; see reason for use restrictions -->\n".encode()
           + body + b"\n")
    validate_goaml(xml)
    return xml
