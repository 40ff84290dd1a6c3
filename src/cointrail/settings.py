"""Typed settings, read once from the environment (prefix ``COINTRAIL_``) and CLI options.

The one place where defaults live; nothing else reads environment variables.

Seven values, checked here by hand rather than with pydantic-settings: every command reads
them before it does anything, and importing pydantic and pydantic-settings took about 0.1 s
of each command's start (a third of ``cointrail status``), more than the rest of the settings
work by far. The checks are the ones pydantic made: types, bounds, and the same words for
true and false.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cointrail.errors import InputError
from cointrail.textvalues import yes_no

ENV_PREFIX = "COINTRAIL_"
_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n"}


class SettingsError(InputError):
    """A setting (CLI option or ``COINTRAIL_*`` variable) has a value it cannot take."""


@dataclass(frozen=True, slots=True)
class Settings:
    """cointrail's settings. Every field can be set as ``COINTRAIL_<NAME>``."""

    store: Path = Path("cointrail-data")  # store directory
    chain: str = "bitcoin"  # default chain name
    network: str = "mainnet"  # default network name
    confirmations: int = 6  # blocks below the tip that analyses treat as final
    rpc_timeout: float = 30.0  # node RPC timeout in seconds
    # seconds a command or API request waits for a chain's database that another process
    # holds (sync --follow taking a block) before it gives up
    store_wait: float = 10.0
    debug: bool = False  # show tracebacks for expected errors


@dataclass(frozen=True, slots=True)
class _Bounds:
    low: float | None = None  # inclusive unless low_open
    high: float | None = None
    low_open: bool = False


_BOUNDS = {
    "confirmations": _Bounds(low=0),
    "rpc_timeout": _Bounds(low=0, low_open=True),
    "store_wait": _Bounds(low=0, high=3600),
}


def _to_bool(value: object) -> bool:
    answer = yes_no(value, _TRUE, _FALSE)
    if answer is None:
        raise ValueError("not a boolean (use true/false, 1/0, yes/no or on/off)")
    return answer


def _to_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("not a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("not a whole number")
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError("not a whole number") from None


def _to_float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("not a number")
    try:
        number = float(value) if isinstance(value, int | float) else float(str(value).strip())
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _to_text(value: object) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("empty")
    return text


def _to_path(value: object) -> Path:
    return Path(_to_text(value)) if not isinstance(value, Path) else value


_CONVERT: dict[str, Callable[[object], Any]] = {
    "store": _to_path, "chain": _to_text, "network": _to_text, "confirmations": _to_int,
    "rpc_timeout": _to_float, "store_wait": _to_float, "debug": _to_bool,
}


def _checked(name: str, value: object) -> Any:
    converted = _CONVERT[name](value)
    rule = _BOUNDS.get(name, _Bounds())
    if rule.low is not None:
        if rule.low_open and converted <= rule.low:
            raise ValueError(f"must be greater than {rule.low:g}")
        if not rule.low_open and converted < rule.low:
            raise ValueError(f"must be {rule.low:g} or more")
    if rule.high is not None and converted > rule.high:
        raise ValueError(f"must be {rule.high:g} or less")
    return converted


def load_settings(*, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment, with explicit (e.g. CLI) overrides taking precedence
    (an override of None is not given). Raises SettingsError naming every bad value and
    where it came from."""
    env = os.environ if environ is None else environ
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown settings: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    problems = []
    for name in _CONVERT:
        given = overrides.get(name)
        source = f"--{name.replace('_', '-')}"
        if given is None:
            variable = f"{ENV_PREFIX}{name.upper()}"
            # names are case-insensitive, as in the shell tools that set them
            given = next((v for k, v in env.items() if k.upper() == variable), None)
            source = variable
        if given is None:
            continue
        try:
            values[name] = _checked(name, given)
        except ValueError as exc:
            problems.append(f"{source}={given!s}: {exc}")
    if problems:
        raise SettingsError(
            f"invalid settings (options or COINTRAIL_* variables): {'; '.join(problems)}")
    return Settings(**values)
