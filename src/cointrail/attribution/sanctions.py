"""OFAC SDN digital-currency addresses: the list formats, read into list versions.

Formats (LEGAL.md §4.4), each detected from its content:

- ``sdn_advanced.xml``: the FeatureType whose text is "Digital Currency Address - <CODE>" gives
  a feature type id; each DistinctParty's Feature of that type holds the address in its
  VersionDetail; the party's primary name comes from its Profile, the programs and designation
  date from the SanctionsEntry of that profile; the publication date from DateOfIssue.
- legacy ``sdn.xml``: ``sdnEntry{uid, lastName, programList/program, idList/id{idType,
  idNumber}}``; the publication date from ``publshInformation/Publish_Date``.
- legacy ``sdn.csv``: addresses sit in the remarks text as "Digital Currency Address - XBT
  <address>;". OFAC cuts remarks at 1,000 characters, so the last address of a long remarks
  field can be cut mid-string: an address with nothing after it at the end of the field is
  refused as ``truncated-address`` and never stored, and a field cut inside an entry is
  reported as ``truncated-remarks`` (addresses past the cut are missing).
- per-asset address lists (``sanctioned_addresses_<CODE>.txt`` / ``.json``, one list per asset)
  and ``derived_first_seen_history.csv`` (asset, address, first and last list date), which
  becomes one list version per list date.

XML is read namespace-agnostically (element local names), with the standard library's expat
parser, which refuses entity-expansion bombs. Every address is validated for the chain of its
asset code before it is stored (`chains.canonical_address`).
"""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cointrail.attribution.chains import canonical_address
from cointrail.attribution.problems import ProblemLog
from cointrail.errors import AddressError

OFAC_SDN = "OFAC SDN"
FEATURE_PREFIX = "Digital Currency Address - "
SANCTIONS_COLUMNS = (
    "asset", "chain", "network", "address", "party_name", "party_uid", "programs",
    "listed_date", "feature_type", "line",
)
REMARKS_LIMIT = 1000  # OFAC's legacy CSV cuts the remarks field at this many characters
_CSV_ADDRESS = re.compile(r"Digital Currency Address - ([A-Za-z0-9]+) ([A-Za-z0-9:]+)")
_ASSET_FILE = re.compile(r"sanctioned_addresses_([A-Za-z0-9]+)\.(txt|json)$")


@dataclass(slots=True)
class SanctionsList:
    """One list version's content: metadata, entry columns, problems."""

    kind: str
    scope: str
    published: str | None
    problems: ProblemLog
    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {c: [] for c in SANCTIONS_COLUMNS}
    )
    rejected: int = 0
    title: str | None = None

    def add(
        self,
        asset: str,
        address: str,
        *,
        line: int | None = None,
        party_name: str | None = None,
        party_uid: str | None = None,
        programs: list[str] | None = None,
        listed_date: str | None = None,
    ) -> bool:
        """Validate and add one address; a problem (and False) when it is not valid."""
        try:
            canon = canonical_address(asset, address)
        except AddressError as exc:
            self.problems.add(line, "address", f"{asset} address {address[:100]!r}: {exc}")
            self.rejected += 1
            return False
        cols = self.columns
        cols["asset"].append(asset.upper())
        cols["chain"].append(canon.chain)
        cols["network"].append(canon.network)
        cols["address"].append(canon.text)
        cols["party_name"].append(party_name)
        cols["party_uid"].append(party_uid)
        cols["programs"].append(",".join(programs) if programs else None)
        cols["listed_date"].append(listed_date)
        cols["feature_type"].append(FEATURE_PREFIX + asset.upper())
        cols["line"].append(line)
        return True

    @property
    def records(self) -> int:
        return len(self.columns["address"])


def asset_of_feature(text: str | None) -> str | None:
    """``XBT`` from "Digital Currency Address - XBT"; None for other feature types."""
    if text and text.strip().startswith(FEATURE_PREFIX):
        return text.strip()[len(FEATURE_PREFIX):].strip().upper()
    return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(elem: ET.Element, name: str) -> Iterator[ET.Element]:
    return (c for c in elem.iter() if _local(c.tag) == name)


def _first_text(elem: ET.Element, name: str) -> str | None:
    for c in _children(elem, name):
        if c.text and c.text.strip():
            return c.text.strip()
    return None


def _ymd(elem: ET.Element | None) -> str | None:
    if elem is None:
        return None
    parts = {}
    for c in elem:
        parts[_local(c.tag)] = (c.text or "").strip()
    try:
        return date(int(parts["Year"]), int(parts["Month"]), int(parts["Day"])).isoformat()
    except (KeyError, ValueError):
        return None


def sniff_xml_root(head: bytes) -> str | None:
    """``sdn_advanced`` or ``sdn_xml`` from the first bytes of an XML file, else None."""
    text = head.decode("utf-8", "replace")
    if re.search(r"<(\w+:)?Sanctions[\s>]", text):
        return "sdn_advanced"
    if re.search(r"<(\w+:)?sdnList[\s>]", text):
        return "sdn_xml"
    return None


def read_sdn_advanced(file: str, raw: bytes) -> SanctionsList:
    """The digital-currency addresses of an ``sdn_advanced.xml`` (one whole-list version)."""
    log = ProblemLog(file)
    out = SanctionsList("ofac-sdn-advanced-xml", "*", None, log, title=OFAC_SDN)
    feature_assets: dict[str, str] = {}
    program_types: set[str] = set()
    parties: list[tuple[str, str | None, list[tuple[str, str]]]] = []
    entries: dict[str, tuple[list[str], list[str]]] = {}
    try:
        for _event, elem in ET.iterparse(io.BytesIO(raw), events=("end",)):
            name = _local(elem.tag)
            if name == "DateOfIssue":
                out.published = _ymd(elem)
            elif name == "FeatureType":
                asset = asset_of_feature(elem.text)
                if asset is not None and elem.get("ID"):
                    feature_assets[elem.get("ID", "")] = asset
            elif name == "SanctionsType":
                if (elem.text or "").strip().lower() == "program":
                    program_types.add(elem.get("ID", ""))
            elif name == "DistinctParty":
                for profile in _children(elem, "Profile"):
                    addresses = []
                    for feature in _children(profile, "Feature"):
                        asset = feature_assets.get(feature.get("FeatureTypeID", ""))
                        if asset is None:
                            continue
                        for detail in _children(feature, "VersionDetail"):
                            if detail.text and detail.text.strip():
                                addresses.append((asset, detail.text.strip()))
                    if addresses:
                        parties.append((profile.get("ID", elem.get("FixedRef", "")),
                                        _primary_name(profile), addresses))
                elem.clear()
            elif name == "SanctionsEntry":
                profile_id = elem.get("ProfileID", "")
                dates = [d for d in (_ymd(x) for x in _children(elem, "Date")) if d]
                programs = []
                for measure in _children(elem, "SanctionsMeasure"):
                    if program_types and measure.get("SanctionsTypeID") not in program_types:
                        continue
                    comment = _first_text(measure, "Comment")
                    if comment:
                        programs.append(comment)
                entries[profile_id] = (programs, dates)
                elem.clear()
    except ET.ParseError as exc:
        log.add(exc.position[0], "format", f"not well-formed XML: {exc}")
        return out
    if not feature_assets:
        log.add(None, "format", "no 'Digital Currency Address - ...' feature type in "
                                "ReferenceValueSets/FeatureTypeValues: is this sdn_advanced.xml?")
    if out.published is None:
        log.add(None, "format", "no DateOfIssue: the list version has no publication date")
    for profile_id, party_name, addresses in parties:
        programs, dates = entries.get(profile_id, ([], []))
        for asset, address in addresses:
            out.add(asset, address, party_name=party_name, party_uid=profile_id,
                    programs=programs, listed_date=min(dates) if dates else None)
    return out


def _primary_name(profile: ET.Element) -> str | None:
    aliases = list(_children(profile, "Alias"))
    aliases.sort(key=lambda a: a.get("Primary") != "true")
    for alias in aliases:
        parts = [p.text.strip() for p in _children(alias, "NamePartValue") if p.text]
        if parts:
            return " ".join(parts)
    return None


def read_sdn_xml(file: str, raw: bytes) -> SanctionsList:
    """The digital-currency addresses of a legacy ``sdn.xml`` (one whole-list version)."""
    log = ProblemLog(file)
    out = SanctionsList("ofac-sdn-xml", "*", None, log, title=OFAC_SDN)
    try:
        for _event, elem in ET.iterparse(io.BytesIO(raw), events=("end",)):
            name = _local(elem.tag)
            if name == "Publish_Date" and elem.text:
                try:
                    day = datetime.strptime(elem.text.strip(), "%m/%d/%Y").date()
                    out.published = day.isoformat()
                except ValueError:
                    log.add(None, "format", f"Publish_Date {elem.text.strip()!r} is not MM/DD/YYYY")
            elif name == "sdnEntry":
                uid = _direct_text(elem, "uid")
                names = [_direct_text(elem, n) for n in ("firstName", "lastName")]
                party = " ".join(n for n in names if n) or None
                programs = [p.text.strip() for p in _children(elem, "program") if p.text]
                for ident in _children(elem, "id"):
                    asset = asset_of_feature(_direct_text(ident, "idType"))
                    number = _direct_text(ident, "idNumber")
                    if asset is None:
                        continue
                    if not number:
                        log.add(None, "format", f"sdnEntry {uid}: {FEATURE_PREFIX}{asset} "
                                                "without idNumber")
                        out.rejected += 1
                        continue
                    out.add(asset, number, party_name=party, party_uid=uid, programs=programs)
                elem.clear()
    except ET.ParseError as exc:
        log.add(exc.position[0], "format", f"not well-formed XML: {exc}")
        return out
    if out.published is None:
        log.add(None, "format", "no publshInformation/Publish_Date: no publication date")
    return out


def _direct_text(elem: ET.Element, name: str) -> str | None:
    for c in elem:
        if _local(c.tag) == name:
            return (c.text or "").strip() or None
    return None


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # OFAC's legacy CSV is not always UTF-8


def read_sdn_csv(file: str, raw: bytes, published: str | None) -> SanctionsList:
    """Addresses from the remarks of a legacy ``sdn.csv``; cut addresses are refused."""
    log = ProblemLog(file)
    out = SanctionsList("ofac-sdn-csv", "*", published, log, title=OFAC_SDN)
    text = _decode_text(raw).replace("\x1a", "")
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < 12:
            log.add(line_no, "format", f"{len(row)} fields, expected 12 (ent_num ... remarks)")
            continue
        uid, name, programs, remarks = row[0].strip(), row[1].strip(), row[3], row[11]
        program_list = [p.strip(" [") for p in programs.split("]") if p.strip(" [-0")]
        last_end = 0
        for match in _CSV_ADDRESS.finditer(remarks):
            asset, address = match.group(1), match.group(2)
            last_end = match.end()
            if match.end() >= len(remarks.rstrip()):
                log.add(line_no, "truncated-address",
                        f"{asset} address {address!r} of SDN {uid} ({name}) runs to the end of "
                        f"the remarks field ({len(remarks)} characters, OFAC cuts at "
                        f"{REMARKS_LIMIT}): cut, refused; take it from sdn_advanced.xml")
                out.rejected += 1
                continue
            out.add(asset, address, line=line_no, party_name=name, party_uid=uid,
                    programs=program_list)
        if len(remarks) >= REMARKS_LIMIT and _cut_inside_entry(remarks[last_end:]):
            log.add(line_no, "truncated-remarks",
                    f"remarks of SDN {uid} ({name}) are cut inside a digital-currency entry: "
                    "addresses past the cut are missing; take them from sdn_advanced.xml")
    return out


def _cut_inside_entry(tail: str) -> bool:
    """True if remarks end inside a "Digital Currency Address - CODE " entry, before its address."""
    segment = tail.rsplit(";", maxsplit=1)[-1].strip().removeprefix("alt.").strip()
    if len(segment) < 2:
        return False
    if len(segment) <= len(FEATURE_PREFIX):
        return FEATURE_PREFIX.startswith(segment)
    return segment.startswith(FEATURE_PREFIX) and _CSV_ADDRESS.match(segment) is None


def read_asset_list(file: str, raw: bytes, asset: str, published: str | None) -> SanctionsList:
    """A per-asset list (``.txt`` one address a line, or ``.json`` array of strings)."""
    log = ProblemLog(file)
    out = SanctionsList("ofac-address-list", asset.upper(), published, log, title=OFAC_SDN)
    if file.endswith(".json"):
        try:
            values = json.loads(raw)
        except ValueError as exc:
            log.add(None, "format", f"not JSON: {exc}")
            return out
        if not isinstance(values, list):
            log.add(None, "format", "expected a JSON array of addresses")
            return out
        items: list[tuple[int | None, Any]] = [(None, v) for v in values]
    else:
        items = [(n, t.strip()) for n, t in enumerate(_decode_text(raw).splitlines(), 1)]
    for line, value in items:
        if not isinstance(value, str):
            log.add(line, "format", f"{value!r} is not an address string")
            out.rejected += 1
            continue
        if value and not value.startswith("#"):
            out.add(asset, value, line=line)
    if published is None:
        log.add(None, "format", "no publication date known for this list (pass --published)")
    return out


def asset_from_filename(name: str) -> str | None:
    match = _ASSET_FILE.search(name)
    return match.group(1).upper() if match else None


def read_history(file: str, raw: bytes) -> list[SanctionsList]:
    """``derived_first_seen_history.csv`` as one whole-list version per list date.

    Each row says an (asset, address) was on every list from `first_seen_date` to
    `last_seen_date`; the versions are the distinct dates, each holding the addresses on the
    list then. An invalid address is reported once, on the first version that lists it.
    """
    log = ProblemLog(file)
    reader = csv.DictReader(io.StringIO(_decode_text(raw)))
    need = {"asset", "address", "first_seen_date", "last_seen_date"}
    if not need <= set(reader.fieldnames or ()):
        log.add(1, "format", f"expected columns {sorted(need)}")
        return [SanctionsList("ofac-address-history", "*", None, log, title=OFAC_SDN)]
    rows = []
    for line, row in enumerate(reader, start=2):
        try:
            first = datetime.fromisoformat(row["first_seen_date"]).date().isoformat()
            last = datetime.fromisoformat(row["last_seen_date"]).date().isoformat()
        except ValueError:
            log.add(line, "format", "first_seen_date/last_seen_date are not ISO 8601")
            continue
        rows.append((line, row["asset"], row["address"], first, last))
    dates = sorted({r[3] for r in rows} | {r[4] for r in rows})
    versions = []
    invalid: set[tuple[str, str]] = set()
    for index, day in enumerate(dates):
        version = SanctionsList("ofac-address-history", "*", day,
                                log if index == 0 else ProblemLog(file), title=OFAC_SDN)
        for line, asset, address, first, last in rows:
            if first <= day <= last:
                if (asset, address) in invalid:
                    version.rejected += 1
                elif not version.add(asset, address, line=line):
                    invalid.add((asset, address))
        versions.append(version)
    return versions
