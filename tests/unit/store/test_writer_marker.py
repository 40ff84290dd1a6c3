"""The marker a waiting writer leaves beside a database, and the API server's anchors that
let go of a database while it is there (so `sync --follow` gets in under steady requests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cointrail.interfaces.api.deps import Anchors
from cointrail.store.duck import (
    WRITER_WAITING_SECONDS,
    StoreInUseError,
    announce_writer,
    connect_duckdb,
    open_when_free,
    withdraw_writer,
    writer_marker,
    writer_waiting,
)

OPEN_FOR_WRITING = """
import sys, duckdb
duckdb.connect(sys.argv[1]).close()
"""


def can_write_from_another_process(path: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", OPEN_FOR_WRITING, str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    return done.returncode == 0


def test_a_marker_counts_while_it_is_refreshed(tmp_path: Path) -> None:
    db = tmp_path / "bitcoin-mainnet.duckdb"
    assert not writer_waiting(db)
    announce_writer(db)
    assert writer_marker(db).name == "bitcoin-mainnet.duckdb.writer-waiting"
    assert writer_waiting(db)
    old = time.time() - WRITER_WAITING_SECONDS - 1  # left by a writer that was killed
    os.utime(writer_marker(db), (old, old))
    assert not writer_waiting(db)
    announce_writer(db)  # the next try refreshes it
    assert writer_waiting(db)
    withdraw_writer(db)
    assert not writer_waiting(db) and not writer_marker(db).exists()
    withdraw_writer(db)  # twice is harmless


def test_anchors_let_go_of_a_database_a_writer_waits_for(tmp_path: Path) -> None:
    db = tmp_path / "bitcoin-mainnet.duckdb"
    duckdb.connect(str(db)).close()
    anchors = Anchors(idle_seconds=3600)
    try:
        anchors.hold(tmp_path)  # a request came: the database stays open
        assert not can_write_from_another_process(db)
        announce_writer(db)
        anchors.hold(tmp_path)  # the next request: the anchor is closed, none is opened
        assert can_write_from_another_process(db)
        withdraw_writer(db)
        anchors.hold(tmp_path)
        assert not can_write_from_another_process(db)
    finally:
        anchors.release_idle(everything=True)


SERVER_LIKE = """
import sys, threading, time
from pathlib import Path
from cointrail.interfaces.api.deps import Anchors
anchors = Anchors(idle_seconds=3600)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
anchors.hold(Path(sys.argv[1]))
print("holding", flush=True)
while not done.wait(0.05):  # a request every 50 ms: never idle
    anchors.hold(Path(sys.argv[1]))
anchors.release_idle(everything=True)
"""


def test_a_waiting_writer_gets_in_beside_a_steadily_asked_server(tmp_path: Path) -> None:
    """A writer command (`cluster`, `ingest`) that finds the API server holding the database
    leaves the marker while it waits; the server lets go, the writer opens it, the marker is
    gone afterwards. Without the marker it waits in vain."""
    db = tmp_path / "bitcoin-mainnet.duckdb"
    duckdb.connect(str(db)).close()
    server = subprocess.Popen([sys.executable, "-c", SERVER_LIKE, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "holding"
        told: list[str] = []
        with pytest.raises(StoreInUseError):
            open_when_free(lambda: connect_duckdb(db, read_only=False, what="the store"),
                           wait_seconds=1.0, on_wait=lambda exc: told.append(exc.in_use))
        assert told == [f"the store {db} is in use by another cointrail process "
                        f"(process {server.pid})"]
        con = open_when_free(lambda: connect_duckdb(db, read_only=False, what="the store"),
                             wait_seconds=60.0, writer_of=db)
        con.close()
        assert not writer_marker(db).exists()
    finally:
        server.communicate("", timeout=60)
