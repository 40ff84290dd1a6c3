"""The attribution database: ``<store>/attribution.duckdb``, beside the per-chain databases.

Invariant: one import of one file is one DuckDB transaction that writes its list version, its
rows and its problems together, so a crash never leaves a version without its rows. Values are
always bound parameters; table and column names come from `attribution.schema`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from cointrail.attribution.problems import ImportProblem
from cointrail.attribution.schema import (
    ACTORS,
    ATTRIBUTION_META,
    ATTRIBUTION_SCHEMA_VERSION,
    ATTRIBUTION_TABLES,
    IMPORT_PROBLEMS,
    LIST_VERSIONS,
    SANCTIONS,
    TAGS,
)
from cointrail.errors import StoreError
from cointrail.store.duck import connect_duckdb, duckdb_transaction
from cointrail.store.schema import Table

ATTRIBUTION_DB = "attribution.duckdb"


@dataclass(frozen=True, slots=True)
class ListVersion:
    """What is known about a list before its rows are written."""

    kind: str
    name: str
    path: str
    sha256: str
    scope: str = "*"
    published: str | None = None
    licence: str | None = None
    title: str | None = None


def arrow_rows(table: Table, columns: dict[str, list[Any]]) -> pa.Table:
    """An Arrow table of `table`'s schema from column lists (missing columns are NULL)."""
    n = len(next(iter(columns.values()))) if columns else 0
    arrays = []
    for col in table.columns:
        values = columns.get(col.name)
        arrays.append(pa.array(values if values is not None else [None] * n, type=col.type.arrow))
    return pa.Table.from_arrays(arrays, schema=table.arrow_schema())


class AttributionStore:
    """Tags, actors, sanctions entries and their list versions, for every chain."""

    def __init__(self, root: Path | str, *, read_only: bool = False) -> None:
        from cointrail.store.duck import Store

        self.root = Path(root)
        self.path = self.root / ATTRIBUTION_DB
        self.read_only = read_only
        Store(self.root).check_directory()  # a store path that is a file: a clear error
        if read_only and not self.path.exists():
            from cointrail.errors import NotFoundError

            raise NotFoundError(
                f"the store {self.root} holds no attribution data; import some first "
                "(cointrail tags import PATH or cointrail sanctions import PATH)"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.con = connect_duckdb(self.path, read_only=read_only, what="the attribution database")
        try:
            if not read_only:
                for table in ATTRIBUTION_TABLES:
                    self.con.execute(table.ddl())
                if not self.con.execute(f"SELECT 1 FROM {ATTRIBUTION_META.name}").fetchall():
                    self.con.execute(
                        f"INSERT INTO {ATTRIBUTION_META.name} VALUES (?, ?)",
                        ["schema_version", str(ATTRIBUTION_SCHEMA_VERSION)],
                    )
            self._check_version()
        except BaseException:
            self.con.close()
            raise

    def _check_version(self) -> None:
        row = self.con.execute(
            f"SELECT value FROM {ATTRIBUTION_META.name} WHERE key = 'schema_version'"
        ).fetchone()
        version = int(row[0]) if row else ATTRIBUTION_SCHEMA_VERSION
        if version != ATTRIBUTION_SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has attribution schema version {version}; this cointrail reads "
                f"{ATTRIBUTION_SCHEMA_VERSION}. Re-import the lists into a new store."
            )

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> AttributionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> AbstractContextManager[None]:
        return duckdb_transaction(self.con)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, list(params)).fetchall()

    # -- versions ---------------------------------------------------------------------------

    def find_version(self, kind: str, sha256: str, scope: str) -> int | None:
        """The version id of an identical earlier import (same kind, scope and content)."""
        row = self.con.execute(
            "SELECT version_id FROM list_versions WHERE kind = ? AND sha256 = ? AND scope = ? "
            "ORDER BY version_id LIMIT 1",
            [kind, sha256, scope],
        ).fetchone()
        return None if row is None else int(row[0])

    def add_version(
        self,
        version: ListVersion,
        *,
        imported_utc: str,
        rows: dict[Table, pa.Table],
        problems: Sequence[ImportProblem],
        rejected: int,
        supersede_name: bool = False,
    ) -> int:
        """Write a list version with its rows and problems in one transaction; its id."""
        with self.transaction():
            row = self.con.execute(
                "SELECT coalesce(max(version_id) + 1, 0) FROM list_versions"
            ).fetchone()
            version_id = int(row[0]) if row else 0
            if supersede_name:  # a newer import of the same tag list replaces the older rows
                old = [int(r[0]) for r in self.con.execute(
                    "SELECT version_id FROM list_versions WHERE kind = ? AND name = ? AND active",
                    [version.kind, version.name],
                ).fetchall()]
                for vid in old:
                    self.con.execute("DELETE FROM tags WHERE version_id = ?", [vid])
                    self.con.execute("DELETE FROM actors WHERE version_id = ?", [vid])
                    self.con.execute(
                        "UPDATE list_versions SET active = false WHERE version_id = ?", [vid]
                    )
            records = 0
            for table, given in rows.items():
                if not given.num_rows:
                    continue
                data = _with_version(table, given, version_id, self)
                records += data.num_rows
                self.con.register("_batch", data)
                cols = ", ".join(table.column_names)
                self.con.execute(f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM _batch")
                self.con.unregister("_batch")
            self.con.execute(
                f"INSERT INTO {LIST_VERSIONS.name} ({', '.join(LIST_VERSIONS.column_names)}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [version_id, version.kind, version.name, version.scope, version.path,
                 version.published, imported_utc, version.sha256, version.licence,
                 version.title, records, len(problems), rejected, True],
            )
            self.add_problems(problems, version_id)
        return version_id

    def add_problems(self, problems: Sequence[ImportProblem], version_id: int | None) -> None:
        if not problems:
            return
        data = arrow_rows(IMPORT_PROBLEMS, {
            "version_id": [version_id] * len(problems),
            "file": [p.file for p in problems],
            "line": [p.line for p in problems],
            "kind": [p.kind for p in problems],
            "message": [p.message for p in problems],
        })
        self.con.register("_problems", data)
        self.con.execute("INSERT INTO import_problems SELECT * FROM _problems")
        self.con.unregister("_problems")

    def versions(self) -> list[dict[str, Any]]:
        cur = self.con.execute("SELECT * FROM list_versions ORDER BY version_id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def counts(self) -> dict[str, int]:
        out = {}
        for table in ATTRIBUTION_TABLES:
            row = self.con.execute(f"SELECT count(*) FROM {table.name}").fetchone()
            out[table.name] = int(row[0]) if row else 0
        return out

    def actor_ids(self) -> frozenset[str]:
        return frozenset(r[0] for r in self.con.execute("SELECT actor_id FROM actors").fetchall())


def _with_version(
    table: Table, data: pa.Table, version_id: int, store: AttributionStore
) -> pa.Table:
    n = data.num_rows
    data = data.set_column(
        data.schema.get_field_index("version_id"), "version_id",
        pa.array([version_id] * n, type=pa.int32()),
    )
    if table is TAGS:
        row = store.con.execute("SELECT coalesce(max(tag_id) + 1, 0) FROM tags").fetchone()
        first = int(row[0]) if row else 0
        data = data.set_column(
            data.schema.get_field_index("tag_id"), "tag_id",
            pa.array(range(first, first + n), type=pa.int64()),
        )
    return data


TABLE_FOR_KIND: dict[str, Table] = {"tagpack": TAGS, "actorpack": ACTORS}
__all__ = ["ATTRIBUTION_DB", "SANCTIONS", "AttributionStore", "ListVersion", "arrow_rows"]
