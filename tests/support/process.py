"""Waiting on a command running in its own process (``sync --follow``, say)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str,
             timeout: float = 120) -> None:
    """Poll `condition` until true; fail with the command's output if it ends first, or
    kill it and fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}: {err}{out}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.communicate()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)
