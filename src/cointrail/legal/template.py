"""Request templates: versioned YAML data files, loaded, checked and rendered.

A template (``templates/<kind>.yaml``) declares its id and version, the legal-basis text, the
fields a letter needs with where each comes from (case metadata, addressee, trace, user input,
or a fixed value in the template), the data categories offered, the deadlines and reminders, and
the letter's subject and body as Jinja2 text. ``extends: _common`` merges the shared fields of
``_common.yaml`` (the template's own field of the same name wins). The agency may override any
packaged template by putting a file with the same ``id`` in ``<store>/legal-templates/``.

Invariant: a template that loads has every field its requirements and deadlines name, and its
subject and body compile; every problem in a file is reported at once, by file and line.
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

KINDS: tuple[str, ...] = ("preservation", "production", "freeze", "mla", "emergency")
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
                             minimum))
    return out


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
        source=source, sha256=digest.hexdigest(),
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
