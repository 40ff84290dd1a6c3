"""The Spark session the scale-out jobs run in; PySpark is imported only here and lazily.

`spark_session` gives local mode (``local[N]``) by default with the web UI off and the driver
bound to 127.0.0.1, so tests and laptops open no public port; any other master URL
(``spark://host:7077``, ``yarn``, ``k8s://...``) is passed through and the cluster's own
settings apply. Python workers run the interpreter that runs cointrail (`sys.executable`) unless
``PYSPARK_PYTHON`` says otherwise, so the CoinJoin detectors import on every executor.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from cointrail.errors import ExternalServiceError, InputError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"
"""Local mode on two cores: what ``--master`` defaults to."""


class SparkUnavailableError(ExternalServiceError):
    """PySpark is not installed, or Spark (its JVM) could not be started."""


def _pyspark() -> type[SparkSession]:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError(
            "PySpark is not installed; install the extra with: pip install 'cointrail[spark]' "
            "(it also needs Java 17 or later on PATH)"
        ) from exc
    return SparkSession


def is_local(master: str) -> bool:
    """Whether `master` runs Spark inside this process's JVM (``local``, ``local[N]``...)."""
    return master == "local" or master.startswith("local[")


def local_cores(master: str) -> int | None:
    """N of ``local[N]`` (``local`` is 1, ``local[*]`` the machine's cores); None otherwise."""
    if master == "local":
        return 1
    if master.startswith("local[") and master.endswith("]"):
        inner = master[6:-1].split(",", maxsplit=1)[0]
        if inner == "*":
            return os.cpu_count() or 1
        if inner.isdigit() and int(inner) > 0:
            return int(inner)
        raise InputError(f"--master {master}: write local[N] with N a positive number, or local[*]")
    return None


def spark_session(
    master: str = DEFAULT_MASTER,
    *,
    app_name: str = "cointrail",
    shuffle_partitions: int | None = None,
    driver_memory: str | None = None,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Start (or join) the Spark session for `master`.

    `shuffle_partitions` defaults to twice the local cores in local mode and is left to the
    cluster otherwise. `driver_memory` (e.g. ``"4g"``) only takes effect when this call starts
    the JVM; in local mode the driver is the whole engine, so size it there.
    """
    session_cls = _pyspark()
    cores = local_cores(master)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = session_cls.builder.master(master).appName(app_name)
    settings: dict[str, str] = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "true",  # integer overflow is an error, never a wrap
    }
    if cores is not None:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        settings |= {
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.host": "127.0.0.1",
            "spark.sql.shuffle.partitions": str(shuffle_partitions or 2 * cores),
            "spark.default.parallelism": str(2 * cores),
        }
    elif shuffle_partitions is not None:
        settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    if driver_memory:
        settings["spark.driver.memory"] = driver_memory
    settings |= dict(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: no Java, bad master URL, port clash
        raise SparkUnavailableError(
            f"cannot start Spark with master {master!r}: {exc}. Check that Java 17+ is on "
            "PATH and that the master URL is reachable"
        ) from exc
    session.sparkContext.setLogLevel("ERROR")
    return session


__all__ = ["DEFAULT_MASTER", "SparkUnavailableError", "is_local", "local_cores", "spark_session"]
