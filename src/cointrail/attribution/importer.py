"""Importing files into the attribution database: find files, detect formats, write versions.

A PATH is a file or a directory read recursively (hidden files skipped). Each file becomes one
list version (the history CSV becomes one per list date), written with its rows and problems
in one transaction. A file already imported with the same content is skipped, so running an
import twice changes nothing. Files of no known format are listed as skipped, never silently.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cointrail.attribution import sanctions as sx
from cointrail.attribution.db import AttributionStore, ListVersion, arrow_rows
from cointrail.attribution.misp import MISP_CONFIDENCE, misp_events, read_misp
from cointrail.attribution.own import is_own_yaml, read_own_csv, read_own_yaml, sniff_own_csv
from cointrail.attribution.problems import ImportProblem, ProblemLog
from cointrail.attribution.schema import ACTORS, SANCTIONS, TAGS
from cointrail.attribution.tagpacks import PackResult, load_pack, read_actorpack, read_tagpack
from cointrail.errors import InputError

_ACTORS_KEY = re.compile(rb"^actors\s*:", re.MULTILINE)
_TAGS_KEY = re.compile(rb"^tags\s*:", re.MULTILINE)
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(slots=True)
class FileResult:
    """What happened to one file."""

    path: str
    kind: str | None
    version_ids: list[int] = field(default_factory=list)
    records: int = 0
    rejected: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None  # why nothing was imported

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "version_ids": self.version_ids,
                "records": self.records, "rejected": self.rejected,
                "problems": self.problems, "skipped": self.skipped}


@dataclass(slots=True)
class ImportReport:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def totals(self) -> dict[str, Any]:
        problems: dict[str, int] = {}
        for f in self.files:
            for kind, n in f.problems.items():
                problems[kind] = problems.get(kind, 0) + n
        return {
            "files": len(self.files),
            "imported": sum(1 for f in self.files if f.version_ids),
            "skipped": sum(1 for f in self.files if f.skipped),
            "records": sum(f.records for f in self.files),
            "rejected": sum(f.rejected for f in self.files),
            "problems": sum(problems.values()),
            "problems_by_kind": dict(sorted(problems.items())),
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.totals(), "seconds": round(self.seconds, 3),
                "details": [f.as_dict() for f in self.files]}


def iter_files(paths: Sequence[Path | str]) -> list[Path]:
    """Every file named or under a named directory, sorted; InputError for a missing path."""
    out: list[Path] = []
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise InputError(f"no such file or directory: {', '.join(missing)}; check the path")
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file() and not any(
                part.startswith(".") for part in f.relative_to(p).parts)))
        else:
            out.append(p)
    return out


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _licence_near(path: Path) -> str | None:
    """The first line of the nearest LICENSE file in the file's folder or above (4 levels)."""
    for folder in list(path.resolve().parents)[:4]:
        for name in ("LICENSE", "LICENSE.md", "LICENSE.txt", "COPYING"):
            candidate = folder / name
            if candidate.is_file():
                for line in candidate.read_text("utf-8", "replace").splitlines():
                    if line.strip():
                        return line.strip()[:200]
    return None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc


def _write(
    store: AttributionStore,
    result: FileResult,
    version: ListVersion,
    rows: dict[Any, Any],
    log: ProblemLog,
    rejected: int,
    *,
    supersede: bool = False,
) -> None:
    existing = store.find_version(version.kind, version.sha256, version.scope)
    if existing is not None:
        result.skipped = f"already imported as version {existing}"
        return
    vid = store.add_version(version, imported_utc=_now(), rows=rows, problems=log.items,
                            rejected=rejected, supersede_name=supersede)
    result.version_ids.append(vid)
    result.records += sum(t.num_rows for t in rows.values())
    result.rejected += rejected
    for kind, n in log.counts().items():
        result.problems[kind] = result.problems.get(kind, 0) + n


def import_tags(
    store: AttributionStore,
    paths: Sequence[Path | str],
    *,
    licence: str | None = None,
    misp_confidence: str = MISP_CONFIDENCE,
) -> ImportReport:
    """Import TagPacks, ActorPacks, MISP event exports and the agency's own CSV/YAML tags.

    ActorPacks go first, so tags can name their actors. Each file is one list version; a newer
    import of a file of the same name and kind replaces the older one's tags.
    """
    import time

    started = time.perf_counter()
    report = ImportReport()
    files = iter_files(paths)
    actor_files: list[Path] = []
    tag_files: list[Path] = []
    for path in files:
        suffix = path.suffix.lower()
        if suffix in YAML_SUFFIXES:
            raw = _read(path)
            (actor_files if _ACTORS_KEY.search(raw) else tag_files).append(path)
        elif suffix in (".json", ".csv"):
            tag_files.append(path)
        else:
            report.files.append(FileResult(str(path), None, skipped="not a tag file format"))
    cache: dict[Any, Any] = {}
    for path in actor_files + tag_files:
        raw = _read(path)
        result = FileResult(str(path), None)
        report.files.append(result)
        suffix = path.suffix.lower()
        pack: PackResult
        table = TAGS
        if suffix == ".json":
            events = misp_events(raw)
            if events is None:
                result.skipped = "JSON, but not a MISP event export"
                continue
            result.kind = "misp"
            pack = read_misp(str(path), raw, events, confidence=misp_confidence)
        elif suffix == ".csv":
            if not sniff_own_csv(raw[:4096]):
                result.skipped = "CSV, but its header names no address, chain and label columns"
                continue
            result.kind = "own"
            pack = read_own_csv(str(path), raw, known_actors=store.actor_ids() or None)
        else:
            doc, log = load_pack(str(path), raw)
            is_actor = path in actor_files
            if doc is None:
                result.kind = "actorpack" if is_actor else "tagpack"
                store.add_problems(log.items, None)
                result.problems = log.counts()
                result.skipped = "not valid YAML"
                continue
            if is_actor:
                pack = read_actorpack(str(path), doc, log)
                table = ACTORS
            elif is_own_yaml(doc):
                pack = read_own_yaml(str(path), doc, log,
                                     known_actors=store.actor_ids() or None)
            else:
                pack = read_tagpack(str(path), doc, log, known_actors=store.actor_ids() or None,
                                    address_cache=cache)
            result.kind = pack.kind
        pack_licence = licence or _licence_near(path)
        if table is TAGS:
            pack.columns["licence"] = [pack_licence] * pack.records
        version = ListVersion(
            kind=pack.kind, name=path.name, path=str(path),
            sha256=hashlib.sha256(raw).hexdigest(), published=_pack_date(pack.header),
            licence=pack_licence, title=pack.title,
        )
        _write(store, result, version, {table: arrow_rows(table, pack.columns)}, pack.problems,
               pack.rejected, supersede=True)
    report.seconds = time.perf_counter() - started
    return report


def _pack_date(header: dict[str, Any]) -> str | None:
    from cointrail.attribution.tagpacks import parse_date

    value = header.get("lastmod")
    try:
        return None if value is None else parse_date(value)
    except ValueError:
        return None


def import_sanctions(
    store: AttributionStore,
    paths: Sequence[Path | str],
    *,
    published: str | None = None,
    licence: str | None = None,
) -> ImportReport:
    """Import OFAC lists: sdn_advanced.xml, sdn.xml, sdn.csv, per-asset lists and history."""
    import time

    started = time.perf_counter()
    report = ImportReport()
    files = iter_files(paths)
    history_dates = _history_dates(files)
    seen_assets: dict[tuple[Path, str], Path] = {}
    for path in files:
        result = FileResult(str(path), None)
        report.files.append(result)
        raw = _read(path)
        sha = hashlib.sha256(raw).hexdigest()
        name = path.name
        asset = sx.asset_from_filename(name)
        lists: Iterable[sx.SanctionsList]
        if asset is not None:
            twin = seen_assets.get((path.parent, asset))
            if twin is not None:
                result.kind = "ofac-address-list"
                result.skipped = f"same {asset} list as {twin.name}"
                continue
            seen_assets[(path.parent, asset)] = path
            day = published or history_dates.get(path.parent)
            lists = [sx.read_asset_list(str(path), raw, asset, day)]
        elif path.suffix.lower() == ".xml":
            root = sx.sniff_xml_root(raw[:4096])
            if root == "sdn_advanced":
                lists = [sx.read_sdn_advanced(str(path), raw)]
            elif root == "sdn_xml":
                lists = [sx.read_sdn_xml(str(path), raw)]
            else:
                result.skipped = "XML, but neither sdn_advanced.xml nor sdn.xml"
                continue
        elif path.suffix.lower() == ".csv":
            head = raw[:200].decode("utf-8", "replace")
            if head.startswith("asset,address,first_seen"):
                lists = sx.read_history(str(path), raw)
            else:
                lists = [sx.read_sdn_csv(str(path), raw, published)]
        else:
            result.skipped = "not a sanctions list format"
            continue
        for item in lists:
            result.kind = item.kind
            version = ListVersion(
                kind=item.kind, name=sx.OFAC_SDN, path=str(path), sha256=sha,
                scope=item.scope if item.kind != "ofac-address-history" else
                f"*@{item.published}", published=item.published,
                licence=licence or _licence_near(path), title=item.title,
            )
            _write(store, result, version, {SANCTIONS: arrow_rows(SANCTIONS, item.columns)},
                   item.problems, item.rejected)
    report.seconds = time.perf_counter() - started
    return report


def _history_dates(files: Sequence[Path]) -> dict[Path, str]:
    """Folder → latest list date of a derived_first_seen_history.csv in it (for its lists)."""
    out = {}
    for path in files:
        if path.name == "derived_first_seen_history.csv":
            versions = sx.read_history(str(path), _read(path))
            dates = [v.published for v in versions if v.published]
            if dates:
                out[path.parent] = max(dates)
    return out


def problems_of(store: AttributionStore, limit: int = 100) -> list[ImportProblem]:
    rows = store.query(
        "SELECT file, line, kind, message FROM import_problems ORDER BY rowid LIMIT ?", [limit]
    )
    return [ImportProblem(*r) for r in rows]
