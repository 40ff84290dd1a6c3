"""Spark session settings and errors that need no JVM."""

from __future__ import annotations

import sys

import pytest

from cointrail.analysis.clustering.engine import ClusterConfig
from cointrail.errors import ExternalServiceError, InputError
from cointrail.scaleout.clustering import check_config
from cointrail.scaleout.components import ComponentsNotConverged
from cointrail.scaleout.session import SparkUnavailableError, is_local, local_cores, spark_session


@pytest.mark.parametrize(("master", "cores"), [
    ("local", 1), ("local[2]", 2), ("local[16]", 16), ("local[3,2]", 3),
    ("spark://10.0.0.5:7077", None), ("yarn", None), ("k8s://https://api:6443", None),
])
def test_local_cores(master: str, cores: int | None) -> None:
    assert local_cores(master) == cores
    assert is_local(master) is (cores is not None)


@pytest.mark.parametrize("master", ["local[0]", "local[x]", "local[]"])
def test_a_malformed_local_master_is_an_input_error(master: str) -> None:
    with pytest.raises(InputError, match="local\\[N\\]"):
        local_cores(master)


def test_missing_pyspark_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(SparkUnavailableError, match="cointrail\\[spark\\]") as caught:
        spark_session()
    assert isinstance(caught.value, ExternalServiceError)


def test_the_spark_engine_runs_multi_input_only() -> None:
    check_config(ClusterConfig(heuristics=("multi_input",), guard_size=0))
    with pytest.raises(InputError, match="multi_input heuristic only"):
        check_config(ClusterConfig(heuristics=("multi_input", "change")))


def test_the_bound_error_says_what_to_do() -> None:
    error = ComponentsNotConverged(3, 17)
    assert isinstance(error, InputError)
    assert (error.rounds, error.changed) == (3, 17)
    assert "3 round(s)" in str(error) and "--max-rounds" in str(error)
