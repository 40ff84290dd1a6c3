"""The methodology register: which heuristics, detectors, taint models and rules exist, with
their version, citation and measured accuracy, from the versioned data file
``reporting/data/methodology.yaml``.

Invariant: the register names the same methods, at the same versions, as the analysis code
(`code_methods` reads them from the code; a unit test compares both).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from cointrail.errors import Problem, ValidationError

METHODOLOGY_FILE = "data/methodology.yaml"


@dataclass(frozen=True, slots=True)
class Measure:
    measure: str
    value: str
    source: str


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    version: str | None  # None: versioned with the engine (see Section.versioned_by)
    title: str
    citation: str
    description: str
    known_errors: str
    accuracy: tuple[Measure, ...]


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    code: str
    versioned_by: str | None
    methods: tuple[Method, ...]


@dataclass(frozen=True, slots=True)
class Methodology:
    version: str
    sections: tuple[Section, ...]
    sha256: str  # of the YAML bytes, so a report names exactly which register it printed

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(key)


def load_methodology(path: Path | str | None = None) -> Methodology:
    """The register from `path` (default: the packaged file, read and checked once per process:
    `explain` and `show cluster` quote it on every answer); ValidationError on any problem."""
    if path is None:
        return _packaged()
    return _parse(Path(path).read_bytes(), str(path))


@cache
def _packaged() -> Methodology:
    data = files("cointrail.reporting").joinpath(METHODOLOGY_FILE).read_bytes()
    return _parse(data, METHODOLOGY_FILE)


def _parse(data: bytes, source: str) -> Methodology:
    import hashlib

    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ValidationError("the methodology file is not valid YAML",
                              [Problem(source, None, str(exc))]) from exc
    problems: list[Problem] = []
    sections = tuple(_section(s, source, problems) for s in _list(doc, "sections", source,
                                                                    problems))
    if not isinstance(doc, dict) or not doc.get("version"):
        problems.append(Problem(source, None, "missing top-level 'version'"))
    if problems:
        raise ValidationError("the methodology file has problems", problems)
    return Methodology(str(doc["version"]), sections, hashlib.sha256(data).hexdigest())


def _list(doc: Any, key: str, source: str, problems: list[Problem]) -> list[dict[str, Any]]:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        problems.append(Problem(source, None, f"'{key}' must be a list of mappings"))
        return []
    return value


def _text(d: dict[str, Any], key: str, where: str, problems: list[Problem]) -> str:
    value = d.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(where, None, f"missing or empty '{key}'"))
        return ""
    return value.strip()


def _section(s: dict[str, Any], source: str, problems: list[Problem]) -> Section:
    where = f"{source} section {s.get('key', '?')}"
    methods = []
    for m in _list(s, "methods", where, problems):
        mw = f"{where} method {m.get('name', '?')}"
        version = m.get("version")
        if version is None and not s.get("versioned_by"):
            problems.append(Problem(mw, None, "missing 'version' (or section 'versioned_by')"))
        methods.append(Method(
            _text(m, "name", mw, problems), None if version is None else str(version),
            _text(m, "title", mw, problems), _text(m, "citation", mw, problems),
            _text(m, "description", mw, problems), _text(m, "known_errors", mw, problems),
            tuple(Measure(_text(a, "measure", mw, problems), _text(a, "value", mw, problems),
                          _text(a, "source", mw, problems))
                  for a in _list(m, "accuracy", mw, problems))))
    return Section(_text(s, "key", where, problems), _text(s, "title", where, problems),
                   _text(s, "code", where, problems),
                   None if s.get("versioned_by") is None else str(s["versioned_by"]),
                   tuple(methods))


def code_methods() -> dict[str, dict[str, str | None]]:
    """The methods the analysis code defines, by section key: ``{name: version}``."""
    from cointrail.analysis.clustering import deposit as deposit_reuse
    from cointrail.analysis.clustering.engine import HEURISTICS
    from cointrail.analysis.clustering.heuristics import default_change_heuristics
    from cointrail.analysis.patterns.coinjoin import CoinJoinDetector, default_patterns
    from cointrail.analysis.risk.rules import RULE_TYPES
    from cointrail.analysis.tracing.models import TaintModel

    def versions(pairs: Any) -> dict[str, str | None]:
        return {str(name): None if v is None else str(v) for name, v in pairs}

    return {
        "clustering": versions([(name, h().version) for name, h in HEURISTICS.items()]
                               + [(deposit_reuse.HEURISTIC, deposit_reuse.VERSION)]),
        "change": versions((h.name, h.version) for h in default_change_heuristics()),
        "coinjoin": versions([(CoinJoinDetector.name, CoinJoinDetector.version)]
                             + [(p.name, p.version) for p in default_patterns()]),
        "taint": versions((m.value, _model_version(m)) for m in TaintModel),
        "rules": versions((name, r.version) for name, r in RULE_TYPES.items()),
    }


def _model_version(model: Any) -> str | None:
    """A taint model's version when the code defines one (none does yet)."""
    version = getattr(model, "version", None)
    return None if version is None else str(version)
