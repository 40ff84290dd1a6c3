"""Exporting a case for a partner: the one function the CLI and the API call.

The bundle's files and its zip go under ``artefacts/exports/<bundle>/`` through
`Case.add_artefact` (action ``export.write``), and the export is entered in the case's transfer
register (what, to whom, legal basis, conditions, date) — UNCC art 36.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cointrail.errors import CointrailError

if TYPE_CHECKING:
    from cointrail.cases import Case
    from cointrail.exports.bundle import ExportBundle


@dataclass(frozen=True, slots=True)
class WrittenExport:
    """The bundle, where it went in the case, and its transfer-register entry."""

    bundle: ExportBundle
    folder: str
    files: tuple[dict[str, Any], ...]  # {"path", "sha256", "size"}; the zip last
    transfer_seq: int

    def to_dict(self) -> dict[str, Any]:
        return {"bundle": self.bundle.name, "folder": self.folder, "files": list(self.files),
                "transfer_seq": self.transfer_seq}


def block_times(store_root: Path, snapshot: Mapping[str, Any]) -> dict[int, int]:
    """Header times of the blocks the case's traced transactions are in, read from the chain
    stores under `store_root` (none for a chain without a store: the formats needing times
    then say which blocks they lack)."""
    from cointrail.reporting.facts import transactions
    from cointrail.store.duck import open_chain

    wanted: dict[tuple[str, str], set[int]] = {}
    for t in transactions(snapshot):
        wanted.setdefault((t.chain, t.network), set()).add(t.height)
    times: dict[int, int] = {}
    for (chain, network), heights in sorted(wanted.items()):
        try:
            store = open_chain(store_root, chain, network, read_only=True, create=False)
        except CointrailError:
            continue
        try:
            for height, time in store.query(
                    "SELECT height, time FROM blocks WHERE height BETWEEN ? AND ?",
                    [min(heights), max(heights)]):
                if int(height) in heights:
                    times[int(height)] = int(time)
        finally:
            store.close()
    return times


def export_case(
    case: Case, store_root: Path, *, recipient: str, legal_basis: str,
    formats: Sequence[str], tlp: str | None = None, goaml_profile: str = "generic",
    onward_transfer: str | None = None,
) -> WrittenExport:
    """Export `case` for `recipient` in `formats` and write it into the case, on the custody
    log and in the transfer register."""
    from cointrail.cases.custody import utc_now
    from cointrail.exports.bundle import export_bundle
    from cointrail.exports.options import DEFAULT_ONWARD, ExportOptions

    snapshot = case.snapshot()
    chosen = tuple(f.strip().lower() for f in formats if f.strip())
    options = ExportOptions(
        recipient=recipient, legal_basis=legal_basis, formats=chosen, tlp=tlp,
        goaml_profile=goaml_profile, onward_transfer=onward_transfer or DEFAULT_ONWARD,
        created_at=utc_now(), block_times=block_times(store_root, snapshot))
    bundle = export_bundle(snapshot, options)
    folder = f"artefacts/exports/{bundle.name}"
    params = {"to": recipient, "legal_basis": legal_basis, "formats": list(chosen),
              "tlp": bundle.restrictions.tlp.label, "custody_head": snapshot["custody_head"]}

    def write(relpath: str, data: bytes, what: str) -> dict[str, Any]:
        artefact = case.add_artefact(relpath, data, action="export.write", what=what,
                                     parameters=params)
        return {"path": artefact.path, "sha256": artefact.sha256, "size": artefact.size}

    written = [write(f"{folder}/{name}", data, f"export {bundle.name}: {name} for {recipient}")
               for name, data in sorted(bundle.files.items())]
    written.append(write(f"{folder}.zip", bundle.zip_bytes(),
                         f"export {bundle.name} as zip for {recipient}"))
    manifest_sha = next(w["sha256"] for w in written if w["path"].endswith("manifest.json"))
    transfer = case.register_transfer(
        case.principal.name,
        f"case export {bundle.name} ({', '.join(chosen)}; manifest.json sha256 "
        f"{manifest_sha})", recipient, legal_basis, bundle.restrictions.text())
    return WrittenExport(bundle, folder, tuple(written), transfer.seq)
