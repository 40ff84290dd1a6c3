"""Running the command line in-process for tests: a clean environment, stderr kept apart."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from typer.testing import CliRunner, Result

from cointrail.interfaces.cli.main import app

#: COINTRAIL_* variables unset, so that the machine's settings never leak into a test
CLEAN_ENV: dict[str, str | None] = {
    "COINTRAIL_CHAIN": None, "COINTRAIL_NETWORK": None, "COINTRAIL_DEBUG": None,
    "COINTRAIL_STORE": None, "COINTRAIL_CONFIRMATIONS": None, "COINTRAIL_STORE_WAIT": None,
    "COINTRAIL_RPC_TIMEOUT": None,
}


def run(args: list[str], env: Mapping[str, str | None] | None = None) -> Result:
    """``cointrail ARGS`` in-process, with `env` over a clean environment."""
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2 keeps stderr apart
    return runner.invoke(app, args, env={**CLEAN_ENV, **(env or {})})


def ok_json(result: Result) -> Any:
    """The JSON document a successful command printed (the whole of stdout)."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def pair_counts(cluster: Mapping[str, object], owner: Mapping[str, str],
                addresses: list[str]) -> tuple[int, int, int]:
    """(predicted, true, correct) pairs among `addresses`, counted pair by pair: the
    brute-force reference for `cointrail.analysis.clustering.evaluate`."""
    from itertools import combinations

    predicted = true = correct = 0
    for x, y in combinations(addresses, 2):
        same_cluster, same_owner = cluster[x] == cluster[y], owner[x] == owner[y]
        predicted += same_cluster
        true += same_owner
        correct += same_cluster and same_owner
    return predicted, true, correct


def one_error(result: Result, fragment: str, code: int = 2) -> str:
    """The single ``error:`` line of a failed command (nothing on stdout, no traceback),
    checked for `fragment`."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]
