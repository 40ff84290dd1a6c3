"""The offence taxonomy: UNCC arts 7–17, Budapest arts 2–11 and the Russian-draft speech or
content categories, read from the versioned data file ``data/offences.yaml``.

Invariant: codes are unique; `get` either returns an entry of the file or raises InputError
naming the known codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from cointrail.errors import InputError, StoreError

DATA_FILE = "offences.yaml"


@dataclass(frozen=True, slots=True)
class Offence:
    """One offence of the taxonomy. `speech_or_content` forces the dual-criminality and
    human-rights check before any legal request rests on it."""

    code: str
    instrument: str
    article: str
    title: str
    speech_or_content: bool

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "instrument": self.instrument, "article": self.article,
                "title": self.title, "speech_or_content": self.speech_or_content}


@dataclass(frozen=True, slots=True)
class Taxonomy:
    version: int
    serious_crime_min_years: int
    instruments: dict[str, str]
    offences: tuple[Offence, ...]


@cache
def taxonomy() -> Taxonomy:
    """The parsed data file (read once)."""
    text = resources.files("cointrail.cases").joinpath("data", DATA_FILE).read_text("utf-8")
    doc = yaml.safe_load(text)
    try:
        offences = tuple(
            Offence(str(o["code"]), str(o["instrument"]), str(o["article"]), str(o["title"]),
                    bool(o["speech_or_content"]))
            for o in doc["offences"])
        result = Taxonomy(int(doc["version"]), int(doc["serious_crime"]["min_years"]),
                          {str(k): str(v) for k, v in doc["instruments"].items()}, offences)
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"offence taxonomy {DATA_FILE} is malformed ({exc!r}); "
                         "reinstall cointrail") from exc
    codes = [o.code for o in offences]
    if len(set(codes)) != len(codes):
        raise StoreError(f"offence taxonomy {DATA_FILE} repeats a code; reinstall cointrail")
    unknown = {o.instrument for o in offences} - set(result.instruments)
    if unknown:
        raise StoreError(f"offence taxonomy {DATA_FILE} names unknown instruments {unknown}")
    return result


def all() -> tuple[Offence, ...]:
    """Every offence, in file order."""
    return taxonomy().offences


def version() -> int:
    return taxonomy().version


def get(code: str) -> Offence:
    """The offence with `code` (case-insensitive); InputError listing the codes otherwise."""
    wanted = code.strip().upper()
    for offence in taxonomy().offences:
        if offence.code == wanted:
            return offence
    known = ", ".join(o.code for o in taxonomy().offences)
    raise InputError(f"unknown offence code {code!r}; use one of: {known}")


def is_serious_crime(max_penalty_years: int | None) -> bool | None:
    """UNCC art 2 serious-crime test on the national maximum penalty (None when unknown)."""
    if max_penalty_years is None:
        return None
    return max_penalty_years >= taxonomy().serious_crime_min_years
