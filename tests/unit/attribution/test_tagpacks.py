"""TagPack/ActorPack validation: every problem with file and line, valid tags loaded."""

from __future__ import annotations

from pathlib import Path

from cointrail.attribution import AttributionStore, import_tags

ACTORS = """title: actors
creator: me
lastmod: '2023-02-17'
actors:
- id: exch
  label: An Exchange
  uri: example
  categories: [exchange]
- id: bad
  label: Bad
  uri: example
  categories: [no_such_concept]
"""

PACK = """title: Test pack
creator: Tester
currency: BTC
confidence: forensic
source: a report
lastmod: 2021-11-14
category: exchange
tags:
- address: 1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d
  label: good
  actor: exch
- address: 1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53e
  label: bad checksum
- address: bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq
  label: bad confidence
  confidence: very_sure
- address: '0x0000000000000000000000000000000000000000'
  currency: ETH
  label: zero
- address: '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed'
  currency: ETH
  label: eip55
  abuse: ransomware
  colour: red
- label: no address
"""


def _write(folder: Path) -> Path:
    (folder / "actors").mkdir(parents=True)
    (folder / "actors" / "a.actorpack.yaml").write_text(ACTORS)
    (folder / "pack.yaml").write_text(PACK)
    (folder / "README.md").write_text("not a pack")
    return folder


def test_import_loads_valid_tags_and_reports_each_problem(
    store: AttributionStore, tmp_path: Path
) -> None:
    report = import_tags(store, [_write(tmp_path / "packs")])
    totals = report.totals()
    assert totals["records"] == 1 + 2  # one actor + two tags
    assert totals["rejected"] == 1 + 4
    problems = store.query("SELECT line, kind, message FROM import_problems ORDER BY line")
    by_line = {(line, kind) for line, kind, _ in problems}
    assert (9, "taxonomy") in by_line  # actor category
    assert (12, "address") in by_line  # bad checksum
    assert (14, "taxonomy") in by_line  # confidence
    assert (17, "address") in by_line  # zero address
    assert (20, "schema") in by_line  # unknown field 'colour' (tag kept)
    assert (25, "schema") in by_line  # missing address
    tags = store.query("SELECT address, label, category, abuse, confidence_level, actor, line, "
                       "lastmod, licence FROM tags ORDER BY line")
    assert tags == [
        ("1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d", "good", "exchange", None, 50, "exch", 9,
         "2021-11-14", None),
        ("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", "eip55", "exchange", "ransomware", 50,
         None, 20, "2021-11-14", None),
    ]
    skipped = [f for f in report.files if f.skipped]
    assert [Path(f.path).name for f in skipped] == ["README.md"]


def test_reimport_is_idempotent_and_new_content_replaces_old(
    store: AttributionStore, tmp_path: Path
) -> None:
    folder = _write(tmp_path / "packs")
    import_tags(store, [folder])
    again = import_tags(store, [folder])
    assert all(f.skipped for f in again.files)
    assert store.query("SELECT count(*) FROM tags") == [(2,)]
    (folder / "pack.yaml").write_text(PACK.replace("label: good", "label: better"))
    import_tags(store, [folder / "pack.yaml"])
    assert store.query("SELECT label FROM tags ORDER BY line") == [("better",), ("eip55",)]
    assert store.query("SELECT count(*) FROM list_versions WHERE NOT active") == [(1,)]


def test_bad_yaml_is_a_problem_not_a_crash(store: AttributionStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\ntags:\n- address: [oops\n")
    report = import_tags(store, [bad])
    assert report.files[0].skipped == "not valid YAML"
    assert store.query("SELECT kind, line FROM import_problems") == [("format", 4)]
