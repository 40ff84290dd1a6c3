"""The export bundle: every chosen format plus ``manifest.json`` (per-file SHA-256, the case's
custody head, the tool version, the use restrictions), as files, a folder and a zip.

Invariant: the manifest lists every other file of the bundle with the SHA-256 of its exact
bytes; the zip holds the same bytes with fixed timestamps, so the same case and options give
the same zip.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cointrail.errors import InputError
from cointrail.exports.options import ExportOptions, UseRestrictions, use_restrictions
from cointrail.reporting.facts import case_meta

FILE_NAMES = {
    "stix": "stix-bundle.json",
    "misp": "misp-event.json",
    "ftm": "ftm-entities.jsonl",
    "goaml": "goaml.xml",
    "csv": "identifiers.csv",
    "xlsx": "identifiers.xlsx",
}
MANIFEST = "manifest.json"


@dataclass(frozen=True, slots=True)
class ExportBundle:
    """The bundle's files by name (``manifest.json`` included) and its restrictions."""

    name: str  # e.g. "CT-2026-0001-export-20261128T165300Z"
    files: dict[str, bytes]
    restrictions: UseRestrictions

    @property
    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.files[MANIFEST])
        return data

    def zip_bytes(self) -> bytes:
        """The bundle as a zip (folder `name` inside), with fixed member timestamps."""
        when = datetime.fromisoformat(self.restrictions.created_at.replace("Z", "+00:00"))
        stamp = (max(when.year, 1980), when.month, when.day, when.hour, when.minute,
                 when.second)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for file_name in sorted(self.files):
                info = zipfile.ZipInfo(f"{self.name}/{file_name}", date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                z.writestr(info, self.files[file_name])
        return out.getvalue()

    def write(self, out_dir: Path | str) -> tuple[Path, Path]:
        """Write the folder ``out_dir/name/`` and ``out_dir/name.zip``; returns both paths."""
        root = Path(out_dir)
        folder = root / self.name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, data in sorted(self.files.items()):
            (folder / file_name).write_bytes(data)
        zipped = root / f"{self.name}.zip"
        zipped.write_bytes(self.zip_bytes())
        return folder, zipped


def export_bundle(snapshot: Mapping[str, Any], options: ExportOptions) -> ExportBundle:
    """Every format in `options.formats` for `snapshot`, with the manifest."""
    from cointrail import __version__

    options = options.checked()
    restrictions = use_restrictions(snapshot, options)
    files: dict[str, bytes] = {}
    for fmt in options.formats:
        files[FILE_NAMES[fmt]] = _build(fmt, snapshot, options, restrictions)
    case = case_meta(snapshot)
    head = snapshot.get("custody_head") or case.get("head")
    if not head:
        raise InputError("the case snapshot has no custody head; export a case from "
                         "Case.snapshot(), which carries it")
    manifest = {
        "manifest_version": 1,
        "case_reference": restrictions.case_reference,
        "created_at": restrictions.created_at,
        "tool_version": f"cointrail {__version__}",
        "custody_head": {"seq": head["seq"], "hash": head["hash"]},
        "use_restrictions": restrictions.to_dict(),
        "goaml_profile": options.goaml_profile if "goaml" in options.formats else None,
        "files": [{"path": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                  for n, d in sorted(files.items())],
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False)
                       + "\n").encode("utf-8")
    stamp = restrictions.created_at.replace("-", "").replace(":", "").split(".")[0]
    stamp = stamp.rstrip("Z") + "Z"
    return ExportBundle(f"{restrictions.case_reference}-export-{stamp}", files, restrictions)


def _build(fmt: str, snapshot: Mapping[str, Any], options: ExportOptions,
           restrictions: UseRestrictions) -> bytes:
    if fmt == "stix":
        from cointrail.exports.stix import build_stix

        return build_stix(snapshot, options, restrictions)
    if fmt == "misp":
        from cointrail.exports.misp import build_misp

        return build_misp(snapshot, options, restrictions)
    if fmt == "ftm":
        from cointrail.exports.ftm import build_ftm

        return build_ftm(snapshot, options, restrictions)
    if fmt == "goaml":
        from cointrail.exports.goaml import build_goaml

        return build_goaml(snapshot, options, restrictions)
    from cointrail.exports.tables import build_csv, build_xlsx

    return build_csv(snapshot, restrictions) if fmt == "csv" else build_xlsx(snapshot,
                                                                             restrictions)
