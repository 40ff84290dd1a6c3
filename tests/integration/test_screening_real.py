"""All 86 real GraphSense TagPacks and the ActorPack import with every problem reported, and
screening finds the real tags (slow: about 20 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cointrail.attribution import AttributionStore, import_sanctions, import_tags, screen
from tests.support.data import require_shared

pytestmark = pytest.mark.slow


def test_all_real_packs_import_with_every_problem_counted(tmp_path: Path) -> None:
    packs = require_shared("tags/graphsense-tagpacks")
    with AttributionStore(tmp_path) as store:
        report = import_tags(store, [packs / "actors", packs / "packs"])
        totals = report.totals()
        assert sum(1 for f in report.files if f.kind == "tagpack") == 86
        assert store.query("SELECT count(*) FROM actors") == [(3813,)]
        # every real tag is either loaded or rejected with a problem: 524,170 in all
        loaded = store.query("SELECT count(*) FROM tags")[0][0]
        rejected = sum(f.rejected for f in report.files if f.kind == "tagpack")
        assert loaded + rejected == 524_170
        assert loaded == 519_309
        assert totals["problems_by_kind"] == {"address": 170, "schema": 3923, "taxonomy": 774}
        # known noise: the zero address (usdt_blacklist, defi-protocols-csh) is refused
        assert store.query("SELECT count(*) FROM tags WHERE address = ?",
                           ["0x" + "0" * 40]) == [(0,)]
        import_sanctions(store, [require_shared("sanctions/ofac-0xB10C")])
        (address,) = store.query(
            "SELECT t.address FROM tags t JOIN list_versions v USING (version_id) "
            "JOIN sanctions_entries e ON e.address = t.address "
            "WHERE t.abuse = 'sanction' AND t.chain = 'bitcoin' ORDER BY t.tag_id LIMIT 1")[0]
        (hit,) = screen(store, [address]).to_dicts()
        assert hit["sanctioned"] is True
        assert "sanction" in hit["categories"]
        assert hit["sources"] and hit["max_confidence"] is not None
