"""Attribution: tags (GraphSense TagPacks/ActorPacks), OFAC sanctions lists, and screening.

Everything lives in ``<store>/attribution.duckdb`` (cross-chain); every row names the list
version (one import of one file: kind, publication date, SHA-256, licence) it came from.

    from cointrail.attribution import AttributionStore, import_tags, import_sanctions, screen
    with AttributionStore("cointrail-data") as store:
        import_tags(store, ["packs/"])
        result = screen(store, ["1NpHuti9NSM9fVTXLkvSDU4AnhqGQ5N53d"], as_of="2019-05-01")
"""

from cointrail.attribution.db import AttributionStore
from cointrail.attribution.importer import ImportReport, import_sanctions, import_tags
from cointrail.attribution.screening import ScreenResult, screen

__all__ = [
    "AttributionStore",
    "ImportReport",
    "ScreenResult",
    "import_sanctions",
    "import_tags",
    "screen",
]
