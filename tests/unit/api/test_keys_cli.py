"""``cointrail keys create|list|revoke``: the key is printed once and works; list never shows
it; a revoked key is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cointrail.auth.keys import authenticate
from cointrail.errors import AuthError
from cointrail.interfaces.cli.main import app


def run(store: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["--store", str(store), *args],
                                env={"COINTRAIL_STORE": None})
    return result.exit_code, result.output


def test_keys_cli(tmp_path: Path) -> None:
    code, out = run(tmp_path, "keys", "create", "--name", "Ana", "--role", "approver",
                    "--case", "CT-2026-0001", "--json")
    assert code == 0, out
    made = json.loads(out)
    secret = made["secret"]
    assert authenticate(tmp_path, secret).role == "approver"
    code, out = run(tmp_path, "keys", "list", "--json")
    assert code == 0 and secret not in out and secret.split("_", 2)[2] not in out
    assert json.loads(out)[0]["cases"] == ["CT-2026-0001"]
    code, human = run(tmp_path, "keys", "create", "--name", "Bo", "--role", "analyst")
    assert code == 0 and human.count("ct_") == 1
    code, out = run(tmp_path, "keys", "revoke", made["key_id"])
    assert code == 0 and "revoked" in out
    with pytest.raises(AuthError, match="revoked"):
        authenticate(tmp_path, secret)
    code, out = run(tmp_path, "keys", "create", "--name", "C", "--role", "root")
    assert code == 2 and "does not exist" in out


def test_serve_refuses_a_bad_port(tmp_path: Path) -> None:
    code, out = run(tmp_path, "serve", "--port", "70000")
    assert code == 2 and "not a TCP port" in out
