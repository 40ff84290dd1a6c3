"""The cointrail exception tree: every error the product raises on purpose derives from one root.

    CointrailError                      root: `except CointrailError` catches every expected error
    ├── InputError (ValueError)         the caller's input is wrong (CLI exit 2, HTTP 400)
    │   ├── DecodeError                 bytes are not a valid block or transaction; has the offset
    │   ├── AddressError                text is not a valid address for the chain asked for
    │   ├── UnknownChainError           chain/network name not in the ChainSpec registry
    │   └── ValidationError             many problems collected at once (file, line, message)
    ├── NotFoundError (LookupError)     an id, hash or address the store does not hold (HTTP 404)
    ├── AuthError                       no valid credentials (HTTP 401, exit 3)
    │   └── PermissionDeniedError       valid credentials, but the role or case access forbids it
    │                                   (HTTP 403)
    ├── StoreError                      the local store is locked, corrupt or inconsistent (exit 1)
    └── ExternalServiceError            a node or feed failed or went away (exit 1, HTTP 502)

Each family maps to one CLI exit code and one HTTP status in `EXIT_CODES` / `HTTP_STATUS`.
Messages say what was wrong and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CointrailError(Exception):
    """Root of every error cointrail raises on purpose."""


class InputError(CointrailError, ValueError):
    """The caller's input is wrong; fixing the input fixes the error."""


class DecodeError(InputError):
    """Bytes are not a valid block, transaction or file frame.

    `offset` is the byte offset, from the start of the buffer given to the decoder, at which
    decoding failed.
    """

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.reason = message
        self.offset = offset


class AddressError(InputError):
    """Text is not a valid address for the chain and network asked for."""


class UnknownChainError(InputError):
    """A chain or network name that the ChainSpec registry does not know."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem: where it is and what is wrong."""

    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.message}"


class ValidationError(InputError):
    """Several problems found at once; `problems` holds every one of them."""

    def __init__(self, summary: str, problems: Sequence[Problem]) -> None:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{summary}: {shown}{more}")
        self.problems = tuple(problems)


class NotFoundError(CointrailError, LookupError):
    """An id, hash or address that the store does not hold."""


class AuthError(CointrailError):
    """No credentials, or credentials that match no active key."""


class PermissionDeniedError(AuthError):
    """The principal is known, but its role or case access does not allow the action."""


class StoreError(CointrailError):
    """The local store is locked, corrupt, or inconsistent with what was asked."""


class ExternalServiceError(CointrailError):
    """A node, feed or other service failed, refused, or went away."""


EXIT_CODES: dict[type[CointrailError], int] = {
    InputError: 2,
    NotFoundError: 2,
    AuthError: 3,
    StoreError: 1,
    ExternalServiceError: 1,
    CointrailError: 1,
}

HTTP_STATUS: dict[type[CointrailError], int] = {
    InputError: 400,
    NotFoundError: 404,
    PermissionDeniedError: 403,
    AuthError: 401,
    StoreError: 503,
    ExternalServiceError: 502,
    CointrailError: 500,
}


def exit_code_for(error: CointrailError) -> int:
    """The CLI exit code for an error: the entry of its nearest family in `EXIT_CODES`."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def http_status_for(error: CointrailError) -> int:
    """The HTTP status for an error: the entry of its nearest family in `HTTP_STATUS`."""
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500
