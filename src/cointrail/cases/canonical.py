"""Canonical JSON (ADR 0004) and SHA-256 helpers: the one serialisation that hashes are over.

Canonical JSON is ``json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` encoded as UTF-8. Dates and other non-JSON scalars are written with
``str()`` so that a result holding a `datetime.date` serialises the same way every time.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

ZERO_HASH = "0" * 64


def canonical_bytes(obj: Any) -> bytes:
    """The canonical JSON bytes of `obj`."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode("utf-8")


def normalised(obj: Any) -> Any:
    """`obj` as it reads back from its canonical JSON (dates become strings, tuples lists)."""
    return json.loads(canonical_bytes(obj))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def differing_paths(old: Any, new: Any, path: str = "$") -> list[str]:
    """JSON paths (``$.endpoints.exchange.outputs[0].amount_sat``) where `old` and `new`
    differ: a key present on one side only, a list of another length, or another scalar."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}"
            if key not in old or key not in new:
                out.append(where)
            else:
                out += differing_paths(old[key], new[key], where)
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i, (a, b) in enumerate(zip(old, new, strict=False)):
            out += differing_paths(a, b, f"{path}[{i}]")
        if len(old) != len(new):
            out.append(f"{path}[{min(len(old), len(new))}:]")
        return out
    if type(old) is not type(new) or old != new:
        return [path]
    return []
