"""One definition of the tables: the DuckDB DDL, the Arrow schemas and the Parquet export agree."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cointrail import get_chain
from cointrail.store.duck import ChainStore, Store
from cointrail.store.ingest import UtxoIngestor
from cointrail.store.schema import SCHEMA_VERSION, TABLES, VIEWS, ColType, Table
from cointrail.store.sync import ingest_blkfiles
from tests.support.data import require_shared

BTC = get_chain("bitcoin", "mainnet")
BLK = "btc/blocks/mainnet-000000-000438.blk"

# DuckDB's own names for the logical types (information_schema.columns.data_type)
DUCKDB_TYPE_NAMES = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "BOOLEAN", "BLOB", "VARCHAR", "HUGEINT",
}


def table_id(table: Table) -> str:
    return table.name


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    yield connection
    connection.close()


def duck_columns(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str, bool]]:
    rows = con.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_name = ? ORDER BY ordinal_position",
        [name],
    ).fetchall()
    return [(c, t, n == "YES") for c, t, n in rows]


def sample_value(col_type: ColType, i: int) -> object:
    """A value of the column's type that exercises its range (large, negative, binary)."""
    bits = {
        ColType.INT8: 7, ColType.INT16: 15, ColType.INT32: 31, ColType.INT64: 63,
    }
    if col_type in bits:
        return (1 << bits[col_type]) - 1 - i
    return {
        ColType.BOOL: i % 2 == 0,
        ColType.HASH: bytes(range(i, i + 32)),
        ColType.BYTES: b"\x00\xff" * (i + 1),
        ColType.TEXT: f"1Text…{i}",
        # a wei amount above 2**64 (ERC-20 amounts routinely are): needs more than BIGINT
        ColType.AMOUNT256: Decimal(10**30 + i),
    }[col_type]


def sample_table(table: Table, rows: int = 3) -> pa.Table:
    schema = table.arrow_schema()
    columns = []
    for column in table.columns:
        values = [sample_value(column.type, i) for i in range(rows)]
        if column.nullable:
            values[-1] = None
        columns.append(pa.array(values, type=column.type.arrow))
    return pa.table(columns, schema=schema)


@pytest.mark.parametrize("table", TABLES, ids=table_id)
def test_ddl_columns_follow_the_definition(
    con: duckdb.DuckDBPyConnection, table: Table
) -> None:
    con.execute(table.ddl())
    got = duck_columns(con, table.name)
    assert [c for c, _, _ in got] == list(table.column_names)
    assert [t for _, t, _ in got] == [c.type.sql for c in table.columns]
    assert [n for _, _, n in got] == [c.nullable for c in table.columns]
    assert {t for _, t, _ in got} <= DUCKDB_TYPE_NAMES


@pytest.mark.parametrize("table", TABLES, ids=table_id)
def test_arrow_schema_survives_a_duckdb_round_trip(
    con: duckdb.DuckDBPyConnection, table: Table
) -> None:
    con.execute(table.ddl())
    data = sample_table(table)
    con.register("sample", data)
    cols = ", ".join(table.column_names)
    con.execute(f"INSERT INTO {table.name} SELECT {cols} FROM sample")
    back = con.execute(f"SELECT * FROM {table.name}").to_arrow_table()
    # DuckDB reports every Arrow field as nullable; names and types must be the definition's
    want = table.arrow_schema()
    assert back.schema.names == want.names
    assert back.schema.types == want.types
    assert back.to_pylist() == data.to_pylist()  # the values survive too


@pytest.mark.parametrize("table", [t for t in TABLES if any(not c.nullable for c in t.columns)],
                         ids=table_id)
def test_not_null_is_enforced(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    con.execute(table.ddl())
    required = next(c for c in table.columns if not c.nullable)
    data = sample_table(table, rows=1).to_pylist()[0]
    data[required.name] = None
    cols = ", ".join(table.column_names)
    marks = ", ".join("?" for _ in table.columns)
    with pytest.raises(duckdb.ConstraintException):
        con.execute(f"INSERT INTO {table.name} ({cols}) VALUES ({marks})",
                    [data[c] for c in table.column_names])


def test_table_names_are_unique() -> None:
    names = [t.name for t in TABLES]
    assert len(names) == len(set(names))
    for table in TABLES:
        assert len(set(table.column_names)) == len(table.columns)
        assert set(table.order_by) <= set(table.column_names)


def test_a_new_store_holds_every_table_and_view(tmp_path: Path) -> None:
    with Store(tmp_path).chain(BTC) as store:
        tables = {
            name for (name,) in store.query(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
            )
        }
        views = {
            name for (name,) in store.query(
                "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'"
            )
        }
        assert tables == {t.name for t in TABLES}
        assert set(VIEWS) <= views
        for table in TABLES:
            assert duck_columns(store.con, table.name) == [
                (c.name, c.type.sql, c.nullable) for c in table.columns
            ]
        assert store.state() == {"schema_version": str(SCHEMA_VERSION), "chain": BTC.key}
        assert all(n == 0 for name, n in store.table_counts().items() if name != "sync_state")


def test_random_bytes_and_address_text_are_stored_uncompressed(tmp_path: Path) -> None:
    """Hashes, address payloads and address text skip DuckDB's compression analysis (it costs
    more than the rest of their insert and finds next to nothing); the other columns keep
    DuckDB's choice. Checked on a store with rows, checkpointed, segment by segment."""
    marked = {(t.name, c.name) for t in TABLES for c in t.columns if c.compression}
    assert {("txs", "txid"), ("blocks", "hash"), ("blocks", "prev_hash"),
            ("blocks", "merkle_root"), ("addresses", "payload"),
            ("addresses", "text")} <= marked
    blk = require_shared(BLK)
    with Store(tmp_path).chain(BTC) as store:
        with UtxoIngestor(store) as ingestor:
            ingest_blkfiles(ingestor, str(blk))
        store.con.execute("CHECKPOINT")
        for table in ("txs", "blocks", "addresses", "outputs"):
            rows = store.query(
                "SELECT column_name, compression FROM pragma_storage_info(?) "
                "WHERE segment_type <> 'VALIDITY'", [table])
            assert rows, table
            for column, compression in rows:
                if (table, column) in marked:
                    assert compression == "Uncompressed", (table, column, compression)
            if table == "outputs":  # DuckDB's choice stands elsewhere: integers compress
                assert {c for _, c in rows} - {"Uncompressed"}, rows


def test_reopening_a_store_keeps_its_identity_rows(tmp_path: Path) -> None:
    Store(tmp_path).chain(BTC).close()
    with Store(tmp_path).chain(BTC) as store:
        assert store.table_counts()["sync_state"] == 2


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainStore]:
    path = require_shared(BLK)
    store = Store(tmp_path_factory.mktemp("schema")).chain(BTC)
    ingest_blkfiles(UtxoIngestor(store), str(path))
    with store:
        yield store


@pytest.fixture(scope="module")
def exported(
    ingested: ChainStore, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("parquet")
    return root, ingested.export_parquet(root)


def test_parquet_export_writes_every_table(exported: tuple[Path, dict[str, Path]]) -> None:
    root, files = exported
    assert set(files) == {t.name for t in TABLES}
    for name, path in files.items():
        assert path.parent == root / name  # DIR/<table>/part-*.parquet, the layout Spark reads
        assert path.name.startswith("part-") and path.suffix == ".parquet"


@pytest.mark.parametrize("table", TABLES, ids=table_id)
def test_parquet_export_has_the_arrow_schema(
    ingested: ChainStore, exported: tuple[Path, dict[str, Path]], table: Table
) -> None:
    path = exported[1][table.name]
    schema = pq.read_schema(path)
    want = table.arrow_schema()
    assert schema.names == want.names
    assert schema.types == want.types
    assert pq.read_metadata(path).num_rows == ingested.table_counts()[table.name]


def test_parquet_export_keeps_the_rows_in_key_order(
    ingested: ChainStore, exported: tuple[Path, dict[str, Path]]
) -> None:
    files = exported[1]
    assert ingested.table_counts()["txs"] > 0
    for table in TABLES:
        if not table.order_by:
            continue
        exported = pq.read_table(files[table.name]).to_pylist()
        key = [tuple(row[c] for c in table.order_by) for row in exported]
        assert key == sorted(key), table.name
        stored = ingested.query(
            f"SELECT * FROM {table.name} ORDER BY {', '.join(table.order_by)}"
        )
        assert [tuple(r.values()) for r in exported] == [tuple(r) for r in stored], table.name


def test_parquet_export_keeps_large_amounts_exact(tmp_path: Path) -> None:
    """Account-model amounts (wei) above 2**53 must come back exact from Parquet."""
    store = Store(tmp_path / "store").chain(get_chain("bitcoin", "mainnet"))
    with store:
        transfers = next(t for t in TABLES if t.name == "transfers")
        data = sample_table(transfers, rows=2)
        store.append({transfers: data})
        files = store.export_parquet(tmp_path / "parquet")
        back = pq.read_table(files["transfers"]).select(["transfer_id", "amount"]).to_pylist()
        sent = data.select(["transfer_id", "amount"]).to_pylist()
        assert sorted(back, key=lambda r: r["transfer_id"]) == sorted(
            sent, key=lambda r: r["transfer_id"]
        )
        assert max(r["amount"] for r in back) > 2**64
