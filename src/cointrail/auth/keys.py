"""API keys: created, listed, revoked and checked, in ``<store>/auth.sqlite``.

A key reads ``ct_<key id>_<secret>``: the key id (12 hex digits) is public and names the key in
logs and listings; the secret is 32 random bytes (URL-safe base64). The full key is shown once,
when it is created. At rest only the SHA-256 of the full key is kept (a 256-bit random secret
needs no slow password hash), and it is compared in constant time.

SQLite, not DuckDB: the server checks a key on every request while the CLI may create or revoke
keys at the same moment, and SQLite lets several processes read and write one small file. All
SQL is parameterised.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cointrail.auth import Principal, Role
from cointrail.errors import AuthError, InputError, NotFoundError, StoreError

AUTH_DB = "auth.sqlite"
KEY_PREFIX = "ct"
_KEY = re.compile(r"ct_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_CASE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    cases TEXT,
    secret_sha256 TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    revoked_utc TEXT
)
"""
#: Compared against when a key id is unknown, so that both answers take the same time.
_DUMMY_HASH = hashlib.sha256(b"cointrail: no such key").hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One stored key, without its secret. `cases`: the case references it may open (None:
    all); `revoked_utc` is None while the key is active."""

    key_id: str
    name: str
    role: Role
    cases: tuple[str, ...] | None
    created_utc: str
    revoked_utc: str | None

    @property
    def active(self) -> bool:
        return self.revoked_utc is None

    def to_dict(self) -> dict[str, object]:
        return {"key_id": self.key_id, "name": self.name, "role": str(self.role),
                "cases": None if self.cases is None else list(self.cases),
                "created_utc": self.created_utc, "revoked_utc": self.revoked_utc,
                "active": self.active}


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: `secret` is the full key text, shown once and never stored."""

    key: ApiKey
    secret: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def auth_db_path(store_root: Path) -> Path:
    return Path(store_root) / AUTH_DB


@contextmanager
def _connect(store_root: Path, *, create: bool) -> Iterator[sqlite3.Connection]:
    path = auth_db_path(store_root)
    if not path.exists():
        if not create:
            raise AuthError(
                f"the store {store_root} has no API keys yet; an operator creates one with "
                "`cointrail keys create --name NAME --role ROLE`"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(path, timeout=10.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the key store {path}: {exc}") from exc
    with closing(con):
        try:
            if create:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute(_SCHEMA)
            yield con
        except sqlite3.Error as exc:
            raise StoreError(f"the key store {path} failed: {exc}") from exc


def _row_to_key(row: tuple[str, str, str, str | None, str, str | None]) -> ApiKey:
    key_id, name, role, cases, created, revoked = row
    return ApiKey(key_id, name, Role(role), None if cases is None else tuple(cases.split(",")),
                  created, revoked)


_COLUMNS = "key_id, name, role, cases, created_utc, revoked_utc"


def parse_role(text: str) -> Role:
    """A role by name; InputError listing the roles otherwise."""
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise InputError(
            f"role {text!r} does not exist; use one of: {', '.join(r.value for r in Role)}"
        ) from None


def create_key(store_root: Path, name: str, role: Role | str,
               cases: list[str] | tuple[str, ...] | None = None) -> NewKey:
    """Create a key for `name` with `role` (restricted to `cases` when given)."""
    name = name.strip()
    if not name or len(name) > 100 or not name.isprintable():
        raise InputError("a key needs a name of 1 to 100 printable characters (who uses it)")
    the_role = role if isinstance(role, Role) else parse_role(role)
    refs: tuple[str, ...] | None = None
    if cases:
        refs = tuple(sorted({c.strip() for c in cases}))
        bad = [c for c in refs if not _CASE_REF.fullmatch(c)]
        if bad:
            raise InputError(f"case reference(s) {', '.join(map(repr, bad))} are not valid: use "
                             "letters, digits, '.', '_' and '-' (e.g. CT-2026-0001)")
    with _connect(store_root, create=True) as con:
        while True:
            key_id = secrets.token_hex(6)
            secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
            try:
                con.execute(
                    f"INSERT INTO api_keys ({_COLUMNS}, secret_sha256)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [key_id, name, the_role.value, None if refs is None else ",".join(refs),
                     _now(), None, _hash(secret)],
                )
            except sqlite3.IntegrityError:  # a key id drawn twice: draw again
                continue
            break
        row = con.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", [key_id]).fetchone()
    return NewKey(_row_to_key(row), secret)


def list_keys(store_root: Path) -> list[ApiKey]:
    """Every key, active and revoked, oldest first."""
    if not auth_db_path(store_root).exists():
        return []
    with _connect(store_root, create=False) as con:
        rows = con.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_utc, key_id")
        return [_row_to_key(r) for r in rows.fetchall()]


def revoke_key(store_root: Path, key_id: str) -> ApiKey:
    """Revoke a key by its id (idempotent: a revoked key keeps its first revocation time)."""
    key_id = key_id.strip().lower()
    if key_id.startswith(f"{KEY_PREFIX}_"):
        key_id = key_id.split("_")[1]
    if not auth_db_path(store_root).exists():
        raise NotFoundError(f"no API key {key_id}: the store {store_root} has no keys")
    with _connect(store_root, create=False) as con:
        con.execute("UPDATE api_keys SET revoked_utc = ? WHERE key_id = ? AND revoked_utc IS NULL",
                    [_now(), key_id])
        row = con.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", [key_id]).fetchone()
    if row is None:
        raise NotFoundError(f"no API key {key_id}; `cointrail keys list` shows the key ids")
    return _row_to_key(row)


def authenticate(store_root: Path, secret: str) -> Principal:
    """The principal of an active key; AuthError for a malformed, unknown or revoked key."""
    match = _KEY.fullmatch(secret.strip())
    if match is None:
        raise AuthError("the API key is malformed: a key reads ct_<12 hex digits>_<43 "
                        "characters>, as printed by `cointrail keys create`")
    key_id = match.group(1)
    with _connect(store_root, create=False) as con:
        row = con.execute(f"SELECT {_COLUMNS}, secret_sha256 FROM api_keys WHERE key_id = ?",
                          [key_id]).fetchone()
    stored = _DUMMY_HASH if row is None else str(row[6])
    if not hmac.compare_digest(stored, _hash(secret.strip())) or row is None:
        raise AuthError("unknown API key; check it, or ask an admin for a new one")
    key = _row_to_key(row[:6])
    if not key.active:
        raise AuthError(f"API key {key_id} ({key.name}) was revoked at {key.revoked_utc}; "
                        "ask an admin for a new one")
    return Principal(key.name, key.role, key.key_id,
                     None if key.cases is None else frozenset(key.cases))
