"""DuckDB backend: one database file per chain and network inside the store directory.

Invariant: every write (a batch of blocks, or a rollback) is one DuckDB transaction that also
moves the recorded tip, so a crash at any moment leaves the store at the last committed tip and
the same command resumes from there. Only parameterised SQL is used with values; table and
column names come from the schema module, never from input.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from cointrail.chain.spec import ChainSpec, all_chains, get_chain
from cointrail.errors import InputError, NotFoundError, StoreError
from cointrail.store.defaults import db_name
from cointrail.store.schema import (
    CLUSTER_TABLES,
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    VIEWS,
    ColType,
    Table,
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Tip:
    height: int
    hash: bytes  # internal order


class StoreInUseError(StoreError):
    """A database of the store is locked by another process (an ingest, a sync, a server).
    `in_use` is the fact alone ("the store X is in use by another cointrail process (process
    N)"), for messages that go on differently from "wait for it to finish or stop it"."""

    def __init__(self, message: str, in_use: str | None = None) -> None:
        super().__init__(message)
        self.in_use = in_use or message


def connect_duckdb(path: Path, *, read_only: bool, what: str) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file; a lock held by another process becomes a StoreInUseError naming
    it, any other failure (not a DuckDB file, say) a StoreError.

    DuckDB's row-group pruner is switched off on every connection: in DuckDB 1.5 it prunes
    by statistics that rows deleted since the last checkpoint still inflate, so after a reorg
    (rows deleted, others appended) ``ORDER BY height DESC LIMIT 1`` returned the block below
    the tip (tests/unit/store/test_store_reorg_queries.py)."""
    try:
        con = duckdb.connect(str(path), read_only=read_only)
        con.execute("SET disabled_optimizers = 'row_group_pruner'")
        return con
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
            pid = re.search(r"PID (\d+)", str(exc))
            who = f" (process {pid.group(1)})" if pid else ""
            in_use = f"{what} {path} is in use by another cointrail process{who}"
            raise StoreInUseError(f"{in_use}; wait for it to finish or stop it",
                                  in_use) from exc
        raise StoreError(f"cannot open {what} {path}: {str(exc).rstrip('!.')}{_DAMAGED}") from exc


_DAMAGED = "; if the file is damaged, move it away and rebuild it (ingest or import again)"

#: How long a writer's "waiting for this database" marker counts after its last refresh (a
#: waiting writer refreshes it every poll; one left by a killed process stops counting).
WRITER_WAITING_SECONDS = 30.0


def writer_marker(path: Path) -> Path:
    """The marker file beside database `path` that says a writer waits for it."""
    return path.with_name(path.name + ".writer-waiting")


def announce_writer(path: Path) -> None:
    """Say that a writer (``sync --follow``) waits for database `path`: readers that keep
    connections open between requests (the API server's anchors) let go of it."""
    with suppress(OSError):  # a read-only folder: the writer waits for the readers' idle time
        writer_marker(path).touch()


def withdraw_writer(path: Path) -> None:
    with suppress(OSError):
        writer_marker(path).unlink(missing_ok=True)


def sleep_unless_stopped(seconds: float, should_stop: Callable[[], bool] | None) -> bool:
    """Wait `seconds`, looking at `should_stop` every 0.2 s; False when told to stop."""
    until = time.monotonic() + seconds
    while not (should_stop and should_stop()):
        left = until - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(0.2, left))
    return False


def open_when_free(open_: Callable[[], T], *, wait_seconds: float,
                   on_wait: Callable[[StoreInUseError], None] | None = None,
                   writer_of: Path | None = None, poll_seconds: float = 0.05,
                   should_stop: Callable[[], bool] | None = None) -> T:
    """`open_()`, tried again every `poll_seconds` for up to `wait_seconds` while another
    process holds the database; its StoreInUseError is raised once the time is up or
    `should_stop` says so. `on_wait` is told once. A writer passes its database as
    `writer_of`: while it waits, the marker beside it asks the API server to hold nothing
    open between requests (`announce_writer`)."""
    deadline = time.monotonic() + wait_seconds
    told = False
    try:
        while True:
            try:
                return open_()
            except StoreInUseError as exc:
                if time.monotonic() >= deadline or (should_stop and should_stop()):
                    raise
                if writer_of is not None:
                    announce_writer(writer_of)  # refreshed at every try: a stale one stops counting
                if on_wait is not None and not told:
                    on_wait(exc)
                told = True
                if not sleep_unless_stopped(poll_seconds, should_stop):
                    raise
    finally:
        if told and writer_of is not None:
            withdraw_writer(writer_of)


def writer_waiting(path: Path) -> bool:
    """Whether a writer announced, within WRITER_WAITING_SECONDS, that it waits for `path`."""
    try:
        return time.time() - writer_marker(path).stat().st_mtime < WRITER_WAITING_SECONDS
    except OSError:
        return False


@contextmanager
def duckdb_transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One DuckDB transaction: committed when the block ends, rolled back on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


class Store:
    """A store directory holding any number of chains (``--store DIR``)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def check_directory(self) -> None:
        """Raise InputError when the store path, or a folder above it, is a file: no database
        can be opened or created there."""
        for path in (self.root, *self.root.parents):
            try:
                if path.is_dir():
                    return
                if not path.exists():
                    continue
            except OSError:  # unreadable: opening the database says why
                return
            where = "" if path == self.root else f" ({path} is a file)"
            raise InputError(
                f"store {self.root} is not a directory{where}; pass --store a directory "
                "(it is created when missing) or move the file away"
            )

    def db_path(self, spec: ChainSpec) -> Path:
        """The database file of one chain and network (it may not exist yet)."""
        return self.root / db_name(spec)

    def chain(self, spec: ChainSpec, *, read_only: bool = False, create: bool = True) -> ChainStore:
        """Open (and by default create) the database of one chain and network."""
        self.check_directory()
        path = self.db_path(spec)
        if not path.exists():
            if read_only or not create:
                raise NotFoundError(
                    f"the store {self.root} holds no {spec.key} data; ingest it first "
                    f"(cointrail ingest blkfiles ... or cointrail sync --rpc ...)"
                )
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(
                    f"cannot create the store directory {self.root}: {exc.strerror}; pass "
                    "--store a directory you can write to"
                ) from exc
        return ChainStore(path, spec, read_only=read_only)

    def chains(self) -> list[ChainSpec]:
        """The chains this store holds data for."""
        self.check_directory()
        found = []
        for spec in all_chains():
            if self.db_path(spec).exists():
                found.append(spec)
        return found


class ChainStore:
    """The tables of one chain/network in one DuckDB database."""

    def __init__(self, path: Path, spec: ChainSpec, *, read_only: bool = False) -> None:
        self.path = path
        self.spec = spec
        self.read_only = read_only
        self._con: duckdb.DuckDBPyConnection | None = connect_duckdb(
            path, read_only=read_only, what="the store")
        try:
            if not read_only:
                self._create()
            self._check_identity()
        except BaseException:
            self.con.close()
            raise

    # -- schema -----------------------------------------------------------------------------

    def _create(self) -> None:
        for table in TABLES:
            self.con.execute(table.ddl())
        self._migrate()
        for name, sql in VIEWS.items():
            self.con.execute(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        existing = dict(self.con.execute("SELECT key, value FROM sync_state").fetchall())
        if not existing:
            self.con.executemany(
                "INSERT INTO sync_state VALUES (?, ?)",
                [["schema_version", str(SCHEMA_VERSION)], ["chain", self.spec.key]],
            )

    def _migrate(self) -> None:
        """Upgrade an older store in place, one schema version at a time, each in one
        transaction (a crash leaves the previous version, and the next open runs it again)."""
        row = self.con.execute(
            "SELECT value FROM sync_state WHERE key = 'schema_version'").fetchone()
        version = SCHEMA_VERSION if row is None else int(row[0])
        while version < SCHEMA_VERSION:
            steps = MIGRATIONS.get(version)
            if steps is None:
                raise StoreError(
                    f"{self.path} has schema version {version} and no migration to "
                    f"{version + 1} exists; re-ingest into a new store directory")
            with duckdb_transaction(self.con):
                for sql in steps:
                    self.con.execute(sql)
                self.con.execute("UPDATE sync_state SET value = ? WHERE key = 'schema_version'",
                                 [str(version + 1)])
            version += 1

    def _check_identity(self) -> None:
        try:
            state = self.state()
        except duckdb.Error as exc:
            raise StoreError(
                f"{self.path} is a DuckDB database but not a cointrail store (no sync_state "
                "table); move it out of the store directory"
            ) from exc
        if state.get("chain") not in (None, self.spec.key):
            raise StoreError(
                f"{self.path} holds {state['chain']} data, not {self.spec.key}; "
                "check --chain/--network"
            )
        version = int(state.get("schema_version", SCHEMA_VERSION))
        if version < SCHEMA_VERSION and version in MIGRATIONS:
            raise StoreError(
                f"{self.path} was written by an older cointrail (schema version {version}; "
                f"this one reads {SCHEMA_VERSION}). Any writing command upgrades it in place, "
                "e.g. `cointrail sync` or `cointrail ingest blkfiles`; then read it again."
            )
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}; this cointrail reads version "
                f"{SCHEMA_VERSION}. Re-ingest into a new store directory."
            )

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The store's connection; a StoreError while the store is released."""
        if self._con is None:
            raise StoreError(
                f"the store {self.path} is released (another process may be using it); "
                "reopen it first"
            )
        return self._con

    @property
    def released(self) -> bool:
        return self._con is None

    def release(self) -> None:
        """Close the connection so that other processes can open the database (DuckDB lets
        one process open a file for writing, and no other process read it meanwhile);
        `reopen` takes it back. Everything uncommitted must be committed first."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def reopen(self) -> None:
        """Open the database again after `release` (StoreInUseError while another process
        holds it). What another process wrote meanwhile is visible from here on."""
        if self._con is None:
            self._con = connect_duckdb(self.path, read_only=self.read_only, what="the store")

    def close(self) -> None:
        self.release()

    def __enter__(self) -> ChainStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ------------------------------------------------------------------------------

    def state(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT key, value FROM sync_state").fetchall())

    def _set_state(self, values: dict[str, str],
                   con: duckdb.DuckDBPyConnection | None = None) -> None:
        con = self.con if con is None else con
        for key, value in values.items():
            con.execute("DELETE FROM sync_state WHERE key = ?", [key])
            con.execute("INSERT INTO sync_state VALUES (?, ?)", [key, value])

    def tip(self) -> Tip | None:
        row = self.con.execute(
            "SELECT height, hash FROM blocks ORDER BY height DESC LIMIT 1"
        ).fetchone()
        return None if row is None else Tip(int(row[0]), bytes(row[1]))

    def block_hash_at(self, height: int) -> bytes | None:
        row = self.con.execute("SELECT hash FROM blocks WHERE height = ?", [height]).fetchone()
        return None if row is None else bytes(row[0])

    def next_ids(self) -> tuple[int, int]:
        """(next tx_id, next addr_id)."""
        row = self.con.execute(
            "SELECT (SELECT coalesce(max(tx_id) + 1, 0) FROM txs),"
            " (SELECT coalesce(max(addr_id) + 1, 0) FROM addresses)"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    # -- writes -----------------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        return duckdb_transaction(self.con)

    def append(self, rows: dict[Table, pa.Table], state: dict[str, str] | None = None, *,
               con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Append a batch to several tables and update state, atomically.

        `con`: another connection to this store's database (``store.con.cursor()``) for a
        writer on its own thread; the store's connection serves one thread at a time."""
        con = self.con if con is None else con
        with duckdb_transaction(con):
            for table, data in rows.items():
                if data.num_rows:
                    con.register("_batch", data)
                    cols = ", ".join(table.column_names)
                    con.execute(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM _batch")
                    con.unregister("_batch")
            if state:
                self._set_state(state, con)

    def rollback_to(self, height: int) -> int:
        """Remove every block above `height` and all that depends on it; returns blocks removed.

        Ids are reclaimed: the next ingest reuses the ids the removed rows had.
        """
        row = self.con.execute(
            "SELECT min(first_tx_id), min(first_addr_id), count(*) FROM blocks WHERE height > ?",
            [height],
        ).fetchone()
        if row is None or not row[2]:
            return 0
        first_tx, first_addr, removed = int(row[0]), int(row[1]), int(row[2])
        with self.transaction():
            for name in ("inputs", "outputs", "coinbases", "txs"):
                self.con.execute(f"DELETE FROM {name} WHERE tx_id >= ?", [first_tx])
            self.con.execute("DELETE FROM account_txs WHERE tx_id >= ?", [first_tx])
            # block-level credits (rewards, withdrawals) have no transaction: by height
            self.con.execute("DELETE FROM transfers WHERE tx_id >= ? OR height > ?",
                             [first_tx, height])
            for table in CLUSTER_TABLES:  # clustering never outlives the blocks it rests on
                self.con.execute(f"DELETE FROM {table.name} WHERE tx_id >= ?", [first_tx])
            state = self.state()
            if int(state.get("cluster_height", -1)) > height:
                self._set_state({"cluster_height": str(height)})
            self.con.execute("DELETE FROM addresses WHERE addr_id >= ?", [first_addr])
            self.con.execute("DELETE FROM blocks WHERE height > ?", [height])
            self._set_state({"tip_height": str(height)})
        return removed

    # -- reads ------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query with bound parameters."""
        return self.con.execute(sql, list(params)).fetchall()

    def table_counts(self) -> dict[str, int]:
        counts = {}
        for table in TABLES:
            row = self.con.execute(f"SELECT count(*) FROM {table.name}").fetchone()
            counts[table.name] = int(row[0]) if row else 0
        return counts

    def export_parquet(self, directory: Path) -> dict[str, Path]:
        """Write every table as Parquet under ``directory/<table>/`` (the layout Spark reads)."""
        out = {}
        for table in TABLES:
            target = directory / table.name
            target.mkdir(parents=True, exist_ok=True)
            path = target / "part-00000.parquet"
            order = f" ORDER BY {', '.join(table.order_by)}" if table.order_by else ""
            # DuckDB writes HUGEINT to Parquet as a double: cast to the exact decimal instead
            cols = ", ".join(
                f"CAST({c.name} AS DECIMAL(38, 0)) AS {c.name}"
                if c.type is ColType.AMOUNT256 else c.name
                for c in table.columns
            )
            self.con.execute(
                f"COPY (SELECT {cols} FROM {table.name}{order}) TO '{_sql_path(path)}' "
                "(FORMAT PARQUET, COMPRESSION ZSTD)"
            )
            out[table.name] = path
        return out


def _sql_path(path: Path) -> str:
    text = str(path)
    if "'" in text:
        raise StoreError(f"path {text!r} contains a quote; choose another directory")
    return text


def open_chain(root: Path | str, chain: str, network: str, **kwargs: Any) -> ChainStore:
    return Store(root).chain(get_chain(chain, network), **kwargs)
