"""Reading a user's input file (a ground-truth CSV, a list of txids) with typed errors that say
what was wrong and what to do."""

from __future__ import annotations

from pathlib import Path

from cointrail.errors import InputError


def read_text_file(path: str | Path, what: str, expected: str) -> tuple[str, bytes]:
    """The UTF-8 text (a byte-order mark dropped) and the raw bytes of the file at `path`.

    `what` names the file in messages ("ground-truth" file) and `expected` says what to pass
    instead of a directory. Raises InputError when the file is missing, a directory, unreadable
    or not UTF-8."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} file {source!r} does not exist; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{source!r} is a directory; pass {expected}") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} file {source!r}: {exc.strerror}") from exc
    try:
        return data.decode("utf-8-sig"), data
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} file {source!r} is not UTF-8 text: {exc.reason}") from exc


__all__ = ["read_text_file"]
