"""Settings: environment over defaults, options over environment, every bad value named."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from cointrail.errors import InputError, exit_code_for
from cointrail.settings import Settings, SettingsError, load_settings


def test_defaults_when_nothing_is_set() -> None:
    assert load_settings(environ={}) == Settings()
    assert Settings() == Settings(Path("cointrail-data"), "bitcoin", "mainnet", 6, 30.0, 10.0,
                                  False)


def test_the_environment_sets_every_field_and_options_win() -> None:
    env = {"COINTRAIL_STORE": "/data/ct", "COINTRAIL_CHAIN": "litecoin",
           "COINTRAIL_NETWORK": "regtest", "COINTRAIL_CONFIRMATIONS": "12",
           "COINTRAIL_RPC_TIMEOUT": "2.5", "COINTRAIL_STORE_WAIT": "0",
           "cointrail_debug": "yes", "COINTRAIL_UNRELATED": "ignored", "PATH": "/bin"}
    got = load_settings(environ=env)
    assert got == Settings(Path("/data/ct"), "litecoin", "regtest", 12, 2.5, 0.0, True)
    assert {f"COINTRAIL_{f.name.upper()}" for f in fields(Settings)} <= {k.upper() for k in env}
    over = load_settings(environ=env, store=Path("here"), chain="bitcoin", confirmations=0,
                         debug=None)
    assert (over.store, over.chain, over.confirmations, over.debug) == \
        (Path("here"), "bitcoin", 0, True)


@pytest.mark.parametrize(("text", "value"), [
    ("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False), ("Off", False)])
def test_boolean_words(text: str, value: bool) -> None:
    assert load_settings(environ={"COINTRAIL_DEBUG": text}).debug is value


@pytest.mark.parametrize(("env", "says"), [
    ({"COINTRAIL_CONFIRMATIONS": "-1"}, "COINTRAIL_CONFIRMATIONS=-1: must be 0 or more"),
    ({"COINTRAIL_CONFIRMATIONS": "six"}, "COINTRAIL_CONFIRMATIONS=six: not a whole number"),
    ({"COINTRAIL_CONFIRMATIONS": "2.5"}, "not a whole number"),
    ({"COINTRAIL_RPC_TIMEOUT": "0"}, "COINTRAIL_RPC_TIMEOUT=0: must be greater than 0"),
    ({"COINTRAIL_RPC_TIMEOUT": "nan"}, "not a finite number"),
    ({"COINTRAIL_STORE_WAIT": "7200"}, "COINTRAIL_STORE_WAIT=7200: must be 3600 or less"),
    ({"COINTRAIL_DEBUG": "maybe"}, "COINTRAIL_DEBUG=maybe: not a boolean"),
    ({"COINTRAIL_STORE": "  "}, "COINTRAIL_STORE=  : empty"),
])
def test_a_bad_value_is_named_with_where_it_came_from(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=env)
    assert says in str(caught.value)
    assert isinstance(caught.value, InputError) and exit_code_for(caught.value) == 2


def test_every_bad_value_is_named_at_once_and_an_option_by_its_flag() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ={"COINTRAIL_STORE_WAIT": "-3"}, confirmations=-2)
    message = str(caught.value)
    assert "--confirmations=-2: must be 0 or more" in message
    assert "COINTRAIL_STORE_WAIT=-3: must be 0 or more" in message


def test_an_unknown_override_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="unknown settings: colour"):
        load_settings(environ={}, colour="blue")


def test_the_command_line_reports_a_bad_variable(tmp_path: Path) -> None:
    from tests.support.cli import run

    result = run(["--store", str(tmp_path), "status"], env={"COINTRAIL_CONFIRMATIONS": "x"})
    assert result.exit_code == 2
    assert "invalid settings (options or COINTRAIL_* variables): COINTRAIL_CONFIRMATIONS=x: " \
        "not a whole number" in result.stderr
