"""Traffic Light Protocol 2.0 (FIRST): the levels a case can carry, their wording and colours."""

from __future__ import annotations

from dataclasses import dataclass

from cointrail.errors import InputError


@dataclass(frozen=True, slots=True)
class Tlp:
    level: str  # clear, green, amber, amber+strict, red
    meaning: str
    colour: str

    @property
    def label(self) -> str:
        """``TLP:AMBER+STRICT``."""
        return f"TLP:{self.level.upper()}"


LEVELS: dict[str, Tlp] = {t.level: t for t in (
    Tlp("clear", "recipients can spread this to the world; there is no limit on disclosure.",
        "#FFFFFF"),
    Tlp("green", "limited disclosure; recipients can spread this within their community.",
        "#33FF00"),
    Tlp("amber", "limited disclosure; recipients can only spread this on a need-to-know basis "
        "within their organisation and its clients.", "#FFC000"),
    Tlp("amber+strict", "limited disclosure; restricted to the recipient's organisation only.",
        "#FFC000"),
    Tlp("red", "for the eyes and ears of individual recipients only; no further disclosure.",
        "#FF2B2B"),
)}


def parse_tlp(text: str | None) -> Tlp:
    """The TLP level named by `text` (``amber``, ``TLP:AMBER``; ``white`` is TLP 1.0 for
    ``clear``); InputError naming the levels otherwise."""
    key = (text or "").strip().lower().removeprefix("tlp:")
    key = "clear" if key == "white" else key
    if key not in LEVELS:
        raise InputError(f"TLP level {text!r} is not known; use one of {', '.join(LEVELS)}")
    return LEVELS[key]
