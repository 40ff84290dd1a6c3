"""The ``cointrail`` program builds only the command it runs; the full app has them all."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.main import get_command

from cointrail.interfaces.cli import main as cli_main
from cointrail.interfaces.cli.main import COMMANDS, command_name


def _commands(app: typer.Typer) -> dict[str, object]:
    group = get_command(app)
    return dict(group.commands)  # type: ignore[attr-defined]


def test_the_full_app_has_every_command() -> None:
    assert set(_commands(cli_main.app)) == set(COMMANDS)


def _shape(command: object) -> object:
    """A command's options and, recursively, its subcommands (JSON-like)."""
    params = [[p.name, list(p.opts), p.required]  # type: ignore[attr-defined]
              for p in command.params]  # type: ignore[attr-defined]
    subs = getattr(command, "commands", None)
    return [params, {k: _shape(v) for k, v in sorted((subs or {}).items())}]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_command_built_alone_is_the_command_of_the_full_app(name: str) -> None:
    # in a fresh interpreter: here the full app has been built, and a group built before
    # keeps the subcommands other modules added to it
    code = ("import json, sys\n"
            "from typer.main import get_command\n"
            "from cointrail.interfaces.cli.main import build_app\n"
            "from tests.unit.interfaces.test_cli_main import _shape\n"
            "group = get_command(build_app([sys.argv[1]]))\n"
            "print(json.dumps({k: _shape(v) for k, v in group.commands.items()}))")
    done = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True,
                          timeout=120, check=True, cwd=Path(__file__).resolve().parents[3])
    alone = json.loads(done.stdout)
    assert list(alone) == [name]
    assert alone[name] == _shape(_commands(cli_main.app)[name])


def test_show_and_case_have_the_subcommands_other_modules_define() -> None:
    commands = _commands(cli_main.app)
    assert {"report", "export"} <= set(commands["case"].commands)  # type: ignore[attr-defined]
    assert {"block", "tx", "address", "cluster"} <= set(
        commands["show"].commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("argv", "name"), [
    (["sync", "--rpc", "x"], "sync"),
    (["--store", "status", "status"], "status"),  # a store directory named like a command
    (["--store=d", "--chain", "litecoin", "--network", "regtest", "show", "tx"], "show"),
    (["--confirmations", "3", "--debug", "trace", "poison"], "trace"),
    (["--help"], None),
    ([], None),
    (["--version"], None),
])
def test_the_command_is_the_first_word_that_is_no_global_option(
        argv: list[str], name: str | None) -> None:
    assert command_name(argv) == name


def _program(*args: str) -> subprocess.CompletedProcess[str]:
    code = "from cointrail.interfaces.cli.main import run; run()"
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=120, check=False)


def test_the_program_runs_a_command_built_alone(tmp_path: object) -> None:
    done = _program("--store", str(tmp_path), "--chain", "litecoin", "--network", "regtest",
                    "status", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"store": str(tmp_path), "chains": []}
    imported = _program("--version")
    assert imported.returncode == 0 and imported.stdout.startswith("cointrail ")


def test_the_program_names_an_unknown_command_and_lists_them_all() -> None:
    done = _program("statsu")
    assert done.returncode == 2
    assert "No such command 'statsu'" in done.stderr
    listing = _program("--help")
    assert listing.returncode == 0
    for name in COMMANDS:
        assert name in listing.stdout


def test_a_command_built_alone_does_not_import_the_others() -> None:
    code = ("import json, sys\nfrom cointrail.interfaces.cli.main import build_app\n"
            "build_app(['status'])\n"
            "print(json.dumps(sorted(m for m in sys.modules\n"
            "                        if m.startswith('cointrail.interfaces.cli.'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    loaded = set(json.loads(done.stdout))
    assert "cointrail.interfaces.cli.store_cmds" in loaded
    assert not loaded & {"cointrail.interfaces.cli.case_cmds", "cointrail.interfaces.cli.api_cmds",
                         "cointrail.interfaces.cli.trace_cmds"}


def _run_program(prelude: str, *args: str) -> subprocess.CompletedProcess[str]:
    code = (f"{prelude}\nimport sys\nfrom cointrail.interfaces.cli.main import run\n"
            f"run(sys.argv[1:])")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_program_ends_without_teardown_but_keeps_what_an_exit_must_do(
    tmp_path: Path,
) -> None:
    """`run` ends the process at once when the command is done (os._exit: no interpreter
    teardown), after the atexit handlers, with the command's exit code and all its output."""
    prelude = ("import atexit, sys\n"
               "atexit.register(lambda: print('atexit ran', file=sys.stderr))\n"
               "import cointrail.interfaces.cli.main as m\n"
               "m.os._exit = (lambda real: lambda code: (print('quick exit', code,"
               " file=sys.stderr), sys.stderr.flush(), real(code)))(m.os._exit)")
    done = _run_program(prelude, "--store", str(tmp_path), "status", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"store": str(tmp_path), "chains": []}
    assert done.stderr.splitlines() == ["atexit ran", "quick exit 0"]
    failed = _run_program(prelude, "--store", str(tmp_path), "show", "block", "0")
    assert failed.returncode not in (0, None)
    assert f"quick exit {failed.returncode}" in failed.stderr
    assert "atexit ran" in failed.stderr
    unknown = _run_program(prelude, "statsu")
    assert unknown.returncode == 2 and "quick exit 2" in unknown.stderr


def test_the_program_exits_normally_while_a_thread_still_works(tmp_path: Path) -> None:
    """A thread that is not a daemon and still runs when the command is done is waited for,
    as a normal exit does: no quick exit then."""
    mark = tmp_path / "written"
    prelude = ("import threading, time, pathlib\n"
               "def work():\n"
               "    time.sleep(1.0)\n"
               f"    pathlib.Path({str(mark)!r}).write_text('done')\n"
               "threading.Thread(target=work).start()")
    done = _run_program(prelude, "--version")
    assert done.returncode == 0 and done.stdout.startswith("cointrail ")
    assert mark.read_text() == "done"
