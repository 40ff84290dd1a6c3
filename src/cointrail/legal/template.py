"""Request templates: versioned YAML data files, loaded, checked and rendered.

A template (``templates/<kind>.yaml``) declares its id and version, the legal-basis text, the
fields a letter needs with where each comes from (case metadata, addressee, trace, user input,
or a fixed value in the template), the data categories offered, the deadlines and reminders, and
the letter's subject and body as Jinja2 text. ``extends: _common`` merges the shared fields of
``_common.yaml`` (the template's own field of the same name wins). The agency may override any
packaged template by putting a file with the same ``id`` in ``<store>/legal-templates/``.

Rules a kind carries are data too: ``applies`` limits the requesting state (the case's
jurisdiction) and the requested state (the addressee's country) to named states or groups of
states (`STATE_GROUPS`), or to international or domestic requests; ``penalty_threshold`` lets
some data categories be chosen only for offences with at least a given maximum penalty (or for
named offences of the taxonomy regardless); ``deadlines.urgent`` replaces the period by a number
of hours when a yes/no field is yes; a field's ``required_if`` makes it required when a yes/no
field is yes. Drafting applies these rules from the template, never by kind name.

Invariant: a template that loads has every field its requirements, deadlines and rules name,
and its subject and body compile; every problem in a file is reported at once, by file and line.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from cointrail.errors import InputError, NotFoundError, Problem, ValidationError

KINDS: tuple[str, ...] = ("preservation", "production", "freeze", "mla", "emergency", "epoc",
                          "epoc-pr", "2ap-art7")
#: Kinds whose requests preserve data: earlier requests of these kinds in a case are listed to
#: later ones (``trace.preserved_refs``), e.g. an EPOC-PR in section D of an EPOC.
PRESERVING_KINDS: frozenset[str] = frozenset({"preservation", "epoc-pr"})
#: The member states of the European Union (ISO 3166-1 alpha-2; Greece is GR, not EL). The one
#: list of them: templates name it as the group ``eu`` in ``applies`` (with ``except`` for a
#: state that does not take part in an instrument, such as Denmark for Regulation 2023/1543).
EU_MEMBER_STATES: frozenset[str] = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
    "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
STATE_GROUPS: Mapping[str, frozenset[str]] = {"eu": EU_MEMBER_STATES}
SCOPES: frozenset[str] = frozenset({"any", "international", "domestic"})
SOURCES: frozenset[str] = frozenset({"case", "addressee", "trace", "user", "template"})
REQUIRED_VALUES: frozenset[str] = frozenset({"true", "false", "international", "domestic"})
FIELD_TYPES: frozenset[str] = frozenset({"text", "int", "bool", "list"})
WHEN: frozenset[str] = frozenset({"any", "domestic", "international"})
OVERRIDE_DIR = "legal-templates"
LAYOUT = "_letter.html.j2"
COMMON = "_common"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a letter. `source` says where its value comes from; `path` is the dotted
    key in that source (case metadata, addressee, trace summary); `required` is ``true``,
    ``false``, ``international`` or ``domestic``; `default` is a user field's value when none
    is given; `value` a template field's fixed text; `minimum` the least an int may be."""

    name: str
    label: str
    source: str
    path: str | None
    required: str
    type: str = "text"
    default: str | None = None
    value: str | None = None
    minimum: int | None = None
    required_if: str | None = None  # a yes/no field: required when that field is yes

    def is_required(self, domestic: bool) -> bool:
        return (self.required == "true"
                or (self.required == "international" and not domestic)
                or (self.required == "domestic" and domestic))


@dataclass(frozen=True, slots=True)
class Requirement:
    """A LEGAL.md list item (`list`, `item`) and the template fields that answer it."""

    list: str
    item: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Category:
    id: str
    label: str
    default: bool


@dataclass(frozen=True, slots=True)
class Reminder:
    """A reminder: on `day` days after approval, or `before_expiry_days` before the end of
    the period; `when` limits it to domestic or international requests."""

    id: str
    when: str
    text: str
    day: int | None = None
    before_expiry_days: int | None = None


@dataclass(frozen=True, slots=True)
class Applies:
    """Where a kind may be used (``applies`` in the YAML). `requesting` and `requested` are the
    states allowed as the case's jurisdiction and as the addressee's country (None: any);
    `scope` is ``any``, ``international`` (addressee in another state) or ``domestic``;
    `rule` says in words where the kind applies and `otherwise` what to use instead."""

    requesting: frozenset[str] | None
    requested: frozenset[str] | None
    scope: str
    rule: str
    otherwise: str

    def problems(self, title: str, requesting: str, requested: str | None) -> list[str]:
        """Why a request from `requesting` to an addressee in `requested` (None: not resolved,
        reported elsewhere) is outside the kind's scope; empty when it is within."""
        why = []
        if self.requesting is not None and requesting not in self.requesting:
            why.append(f"the requesting state (the case's jurisdiction) is {requesting}")
        if requested is not None:
            if self.requested is not None and requested not in self.requested:
                why.append(f"the addressee's country is {requested}")
            if self.scope == "international" and requested == requesting:
                why.append(f"the addressee is established in {requested}, the requesting "
                           "state itself")
            if self.scope == "domestic" and requested != requesting:
                why.append(f"the addressee is established in {requested}, not in "
                           f"{requesting}")
        if not why:
            return []
        return [f"{title} cannot be used here: {'; '.join(why)}. It applies only {self.rule}. "
                f"{self.otherwise}".strip()]


@dataclass(frozen=True, slots=True)
class PenaltyThreshold:
    """Data `categories` that may be chosen only when the case's maximum penalty is at least
    `min_years`, or its offence is one of `offences` (taxonomy codes) regardless."""

    min_years: int
    categories: tuple[str, ...]
    offences: tuple[str, ...]
    source: str
    otherwise: str

    def problems(self, chosen: Sequence[str], max_penalty_years: Any, offence_code: Any,
                 labels: Mapping[str, str]) -> list[str]:
        """One problem per restricted category in `chosen` that the case does not qualify
        for. A missing maximum penalty is reported as a missing field elsewhere."""
        restricted = [c for c in chosen if c in self.categories]
        if not restricted or max_penalty_years is None:
            return []
        if not isinstance(max_penalty_years, int) or max_penalty_years >= self.min_years:
            return []
        if str(offence_code or "").upper() in self.offences:
            return []
        listed = ", ".join(self.offences) or "none"
        return [f"data category {c!r} ({labels.get(c, c)}) needs an offence punishable by a "
                f"maximum of at least {self.min_years} years or one listed regardless "
                f"({listed}); the case's offence {offence_code} carries {max_penalty_years} "
                f"year(s) ({self.source}). {self.otherwise}".strip() for c in restricted]


@dataclass(frozen=True, slots=True)
class Urgent:
    """When the yes/no `field` is yes, the period is `period_hours` hours from approval."""

    field: str
    period_hours: int
    text: str


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    version: str
    kind: str
    title: str
    legal_basis: Mapping[str, str]  # "international" / "domestic" -> text
    fields: tuple[FieldSpec, ...]
    requirements: tuple[Requirement, ...]
    categories: tuple[Category, ...]
    period_field: str | None
    minimum_days: int | None
    reminders: tuple[Reminder, ...]
    subject: str
    body: str
    source: str  # file it came from
    sha256: str  # of that file's bytes (and of _common.yaml when it extends it)
    applies: Applies | None = None
    penalty_threshold: PenaltyThreshold | None = None
    urgent: Urgent | None = None

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise NotFoundError(f"template {self.id} has no field {name!r}")

    def basis(self, domestic: bool) -> str:
        return self.legal_basis["domestic" if domestic else "international"]

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "version": self.version, "kind": self.kind,
                "source": self.source, "sha256": self.sha256}


def environment() -> jinja2.Environment:
    """The Jinja2 environment letters render in: HTML auto-escaping, undefined names fail."""
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)


def _packaged() -> Any:
    return resources.files("cointrail.legal").joinpath("templates")


def layout_text() -> str:
    return str(_packaged().joinpath(LAYOUT).read_text("utf-8"))


def _load_yaml(text: str, source: str) -> Any:
    import yaml

    from cointrail.attribution.yamlevents import load_with_lines

    try:
        return load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else int(mark.line) + 1
        raise ValidationError(f"template {source} is not valid YAML",
                               [Problem(source, line, str(exc).splitlines()[0])]) from exc


def _line(obj: Any) -> int | None:
    return getattr(obj, "line", None)


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def _int(v: Any, source: str, line: int | None, what: str, problems: list[Problem]) -> int | None:
    if v is None:
        return None
    try:
        return int(str(v))
    except ValueError:
        problems.append(Problem(source, line, f"{what} must be a whole number, not {v!r}"))
        return None


def _fields(items: Any, source: str, problems: list[Problem]) -> list[FieldSpec]:
    out: list[FieldSpec] = []
    if items is None:
        return out
    if not isinstance(items, list):
        problems.append(Problem(source, None, "'fields' must be a list"))
        return out
    for item in items:
        line = _line(item)
        if not isinstance(item, dict):
            problems.append(Problem(source, line, "a field must be a mapping"))
            continue
        name, label, src = item.get("name"), item.get("label"), item.get("source")
        bad = False
        for key, value in (("name", name), ("label", label), ("source", src)):
            if value in (None, ""):
                problems.append(Problem(source, line, f"field {name or '?'}: {key!r} is missing"))
                bad = True
        if src is not None and src not in SOURCES:
            problems.append(Problem(source, line, f"field {name}: source {src!r} is not one of "
                                                  f"{', '.join(sorted(SOURCES))}"))
            bad = True
        required = str(item.get("required", "false")).lower()
        if required not in REQUIRED_VALUES:
            problems.append(Problem(source, line, f"field {name}: required {required!r} is not "
                                                  "true, false, international or domestic"))
            bad = True
        ftype = str(item.get("type", "text"))
        if ftype not in FIELD_TYPES:
            problems.append(Problem(source, line, f"field {name}: type {ftype!r} is not one of "
                                                  f"{', '.join(sorted(FIELD_TYPES))}"))
            bad = True
        if src in ("case", "addressee", "trace") and not item.get("from"):
            problems.append(Problem(source, line, f"field {name}: a {src} field needs 'from'"))
            bad = True
        if src == "template" and item.get("value") in (None, ""):
            problems.append(Problem(source, line, f"field {name}: a template field needs 'value'"))
            bad = True
        minimum = _int(item.get("min"), source, line, f"field {name}: min", problems)
        if bad:
            continue
        out.append(FieldSpec(str(name), str(label), str(src), _text(item.get("from")), required,
                             ftype, _text(item.get("default")), _text(item.get("value")),
                             minimum, _text(item.get("required_if"))))
    return out


def _codes(items: Any, source: str, line: int | None, what: str,
           problems: list[Problem]) -> list[str]:
    if not isinstance(items, list):
        problems.append(Problem(source, line, f"{what} must be a list"))
        return []
    return [str(x).strip().upper() for x in items]


def _states(spec: Any, source: str, line: int | None, what: str,
            problems: list[Problem]) -> frozenset[str] | None:
    """States from a list of ISO codes, a group name, or ``{group: NAME, except: [...]}``."""
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"group": spec}
    if isinstance(spec, list):
        codes = set(_codes(spec, source, line, what, problems))
    elif isinstance(spec, dict):
        unknown = set(spec) - {"group", "except"}
        if unknown:
            problems.append(Problem(source, line, f"{what}: unknown key(s) "
                                                  f"{', '.join(sorted(unknown))}; use group "
                                                  "and except"))
        group = str(spec.get("group"))
        if group not in STATE_GROUPS:
            problems.append(Problem(source, line, f"{what}: group {group!r} is not one of "
                                                  f"{', '.join(sorted(STATE_GROUPS))}"))
            return None
        excluded = set(_codes(spec.get("except") or [], source, line, f"{what}.except",
                              problems))
        outside = excluded - STATE_GROUPS[group]
        if outside:
            problems.append(Problem(source, line, f"{what}: except names "
                                                  f"{', '.join(sorted(outside))}, not in "
                                                  f"group {group}"))
        codes = set(STATE_GROUPS[group]) - excluded
    else:
        problems.append(Problem(source, line, f"{what}: give a group name, a list of state "
                                              "codes or {group: ..., except: [...]}"))
        return None
    bad = sorted(c for c in codes if len(c) != 2 or not c.isalpha())
    if bad:
        problems.append(Problem(source, line, f"{what}: {', '.join(bad)} are not ISO 3166-1 "
                                              "alpha-2 codes"))
    return frozenset(codes)


def _applies(doc: Any, source: str, problems: list[Problem]) -> Applies | None:
    if doc is None:
        return None
    line = _line(doc)
    if not isinstance(doc, dict):
        problems.append(Problem(source, line, "'applies' must be a mapping"))
        return None
    unknown = set(doc) - {"requesting", "requested", "scope", "rule", "otherwise"}
    if unknown:
        problems.append(Problem(source, line, f"applies: unknown key(s) "
                                              f"{', '.join(sorted(unknown))}"))
    scope = str(doc.get("scope") or "any")
    if scope not in SCOPES:
        problems.append(Problem(source, line, f"applies.scope {scope!r}: use any, "
                                              "international or domestic"))
    if not doc.get("rule"):
        problems.append(Problem(source, line, "applies.rule is missing: say in words where "
                                              "the kind applies"))
    return Applies(_states(doc.get("requesting"), source, line, "applies.requesting", problems),
                   _states(doc.get("requested"), source, line, "applies.requested", problems),
                   scope, " ".join(str(doc.get("rule") or "").split()),
                   " ".join(str(doc.get("otherwise") or "").split()))


def _penalty(doc: Any, source: str, categories: Sequence[Category],
             problems: list[Problem]) -> PenaltyThreshold | None:
    if doc is None:
        return None
    line = _line(doc)
    if not isinstance(doc, dict):
        problems.append(Problem(source, line, "'penalty_threshold' must be a mapping"))
        return None
    min_years = _int(doc.get("min_years"), source, line, "penalty_threshold.min_years",
                     problems)
    if min_years is None:
        problems.append(Problem(source, line, "penalty_threshold.min_years is missing"))
        min_years = 0
    offered = {c.id for c in categories}
    cats = tuple(str(c) for c in (doc.get("categories") or []))
    for c in cats:
        if c not in offered:
            problems.append(Problem(source, line, f"penalty_threshold: category {c!r} is not "
                                                  "among data_categories"))
    if not cats:
        problems.append(Problem(source, line, "penalty_threshold.categories is empty"))
    offences = tuple(_codes(doc.get("offences_regardless") or [], source, line,
                            "penalty_threshold.offences_regardless", problems))
    if offences:
        from cointrail.cases import offences as taxonomy

        known = {o.code for o in taxonomy.all()}
        for code in offences:
            if code not in known:
                problems.append(Problem(source, line, f"penalty_threshold: offence {code!r} "
                                                      "is not in the offence taxonomy"))
    return PenaltyThreshold(min_years, cats, offences,
                            " ".join(str(doc.get("source") or "").split()),
                            " ".join(str(doc.get("otherwise") or "").split()))


def _common(source_dirs: Sequence[Any]) -> tuple[Any, str, bytes]:
    for d in source_dirs:
        candidate = d.joinpath(f"{COMMON}.yaml")
        if candidate.is_file():
            data = candidate.read_bytes()
            return _load_yaml(data.decode("utf-8"), str(candidate)), str(candidate), data
    raise NotFoundError(f"{COMMON}.yaml is missing from the templates; reinstall cointrail")


def parse_template(data: bytes, source: str, common: tuple[Any, str, bytes] | None) -> Template:
    """A checked Template from a YAML file's bytes; ValidationError listing every problem."""
    problems: list[Problem] = []
    doc = _load_yaml(data.decode("utf-8"), source)
    if not isinstance(doc, dict):
        raise ValidationError(f"template {source}", [Problem(source, 1, "must be a mapping")])
    for key in ("id", "version", "kind", "title", "legal_basis", "subject", "body"):
        if doc.get(key) in (None, ""):
            problems.append(Problem(source, _line(doc), f"{key!r} is missing"))
    kind = str(doc.get("kind"))
    if doc.get("kind") is not None and kind not in KINDS:
        problems.append(Problem(source, _line(doc), f"kind {kind!r} is not one of "
                                                    f"{', '.join(KINDS)}"))
    digest = hashlib.sha256(data)
    fields: dict[str, FieldSpec] = {}
    if doc.get("extends") is not None:
        if doc.get("extends") != COMMON or common is None:
            problems.append(Problem(source, _line(doc), f"extends: only {COMMON!r} is known"))
        else:
            cdoc, csource, cdata = common
            digest.update(cdata)
            for f in _fields(cdoc.get("fields") if isinstance(cdoc, dict) else None, csource,
                             problems):
                fields[f.name] = f
    for f in _fields(doc.get("fields"), source, problems):
        fields[f.name] = f
    for f in fields.values():
        if f.required_if is not None:
            other = fields.get(f.required_if)
            if other is None or other.type != "bool":
                problems.append(Problem(source, _line(doc), f"field {f.name}: required_if "
                                                            f"{f.required_if!r} is not a yes/no "
                                                            "field"))
    basis = doc.get("legal_basis")
    if isinstance(basis, str):
        basis = {"international": basis, "domestic": basis}
    if not isinstance(basis, dict) or not {"international", "domestic"} <= set(basis):
        problems.append(Problem(source, _line(doc), "legal_basis must be a text or a mapping "
                                                    "with 'international' and 'domestic'"))
        basis = {"international": "", "domestic": ""}
    requirements = []
    for r in doc.get("requirements") or []:
        names = tuple(str(n) for n in (r.get("fields") or []))
        for n in names:
            if n not in fields:
                problems.append(Problem(source, _line(r), f"requirement {r.get('list')} "
                                                          f"{r.get('item')}: no field {n!r}"))
        requirements.append(Requirement(str(r.get("list")), str(r.get("item")), names))
    categories = tuple(Category(str(c.get("id")), str(c.get("label")),
                                str(c.get("default", "false")).lower() == "true")
                       for c in doc.get("data_categories") or [])
    deadlines = doc.get("deadlines") or {}
    period_field = _text(deadlines.get("period_field"))
    if period_field is not None and period_field not in fields:
        problems.append(Problem(source, _line(deadlines),
                                f"deadlines.period_field {period_field!r} is not a field"))
    reminders = []
    for r in deadlines.get("reminders") or []:
        line = _line(r)
        when = str(r.get("when", "any"))
        if when not in WHEN:
            problems.append(Problem(source, line, f"reminder when {when!r}: use any, domestic "
                                                  "or international"))
        day = _int(r.get("day"), source, line, "reminder day", problems)
        before = _int(r.get("before_expiry_days"), source, line, "before_expiry_days", problems)
        if (day is None) == (before is None):
            problems.append(Problem(source, line, "a reminder needs exactly one of 'day' and "
                                                  "'before_expiry_days'"))
        if before is not None and period_field is None:
            problems.append(Problem(source, line, "before_expiry_days needs deadlines."
                                                  "period_field"))
        reminders.append(Reminder(str(r.get("id")), when, str(r.get("text", "")), day, before))
    urgent = None
    if deadlines.get("urgent") is not None:
        u = deadlines["urgent"]
        line = _line(u) or _line(deadlines)
        name = str(u.get("field")) if isinstance(u, dict) else ""
        hours = _int(u.get("period_hours"), source, line, "deadlines.urgent.period_hours",
                     problems) if isinstance(u, dict) else None
        if name not in fields or fields[name].type != "bool":
            problems.append(Problem(source, line, f"deadlines.urgent.field {name!r} is not a "
                                                  "yes/no field"))
        if hours is None or hours < 1:
            problems.append(Problem(source, line, "deadlines.urgent.period_hours must be a "
                                                  "whole number of at least 1"))
        else:
            urgent = Urgent(name, hours, str(u.get("text", "")) if isinstance(u, dict) else "")
    applies = _applies(doc.get("applies"), source, problems)
    penalty = _penalty(doc.get("penalty_threshold"), source, categories, problems)
    env = environment()
    for key in ("subject", "body"):
        try:
            env.parse(str(doc.get(key) or ""))
        except jinja2.TemplateSyntaxError as exc:
            problems.append(Problem(source, _line(doc), f"{key}: {exc.message} (line "
                                                        f"{exc.lineno} of the {key})"))
    if problems:
        raise ValidationError(f"template {source} has {len(problems)} problem(s)", problems)
    return Template(
        id=str(doc["id"]), version=str(doc["version"]), kind=kind, title=str(doc["title"]),
        legal_basis={k: " ".join(str(v).split()) for k, v in basis.items()},
        fields=tuple(fields.values()), requirements=tuple(requirements),
        categories=categories, period_field=period_field,
        minimum_days=_int(deadlines.get("minimum_days"), source, None, "minimum_days", []),
        reminders=tuple(reminders), subject=str(doc["subject"]), body=str(doc["body"]),
        source=source, sha256=digest.hexdigest(), applies=applies,
        penalty_threshold=penalty, urgent=urgent,
    )


def _dirs(store_root: Path | None) -> list[Any]:
    dirs: list[Any] = []
    if store_root is not None and (Path(store_root) / OVERRIDE_DIR).is_dir():
        dirs.append(Path(store_root) / OVERRIDE_DIR)
    dirs.append(_packaged())
    return dirs


def load_templates(store_root: Path | None = None) -> dict[str, Template]:
    """Every template by kind: the agency's overrides in ``<store>/legal-templates/`` first,
    then the packaged ones. ValidationError lists every problem of every file."""
    dirs = _dirs(store_root)
    common = _common(dirs)
    found: dict[str, Template] = {}
    problems: list[Problem] = []
    for d in dirs:
        for entry in sorted(d.iterdir(), key=lambda p: p.name):
            if not entry.name.endswith(".yaml") or entry.name.startswith("_"):
                continue
            try:
                t = parse_template(entry.read_bytes(), str(entry), common)
            except ValidationError as exc:
                problems.extend(exc.problems)
                continue
            found.setdefault(t.kind, t)
    if problems:
        raise ValidationError("request templates have problems", problems)
    missing = [k for k in KINDS if k not in found]
    if missing:
        raise NotFoundError(f"no template for {', '.join(missing)}; reinstall cointrail")
    return found


def load_template(kind: str, store_root: Path | None = None) -> Template:
    if kind not in KINDS:
        raise InputError(f"request kind {kind!r}: use one of {', '.join(KINDS)}")
    return load_templates(store_root)[kind]
