"""schemathesis over /openapi.json with a valid admin key: no generated request, valid or not,
makes the server answer 5xx. Examples are bounded (`MAX_EXAMPLES` per operation) to keep the
run short; the operations are read from the schema, so a new route is fuzzed too."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from cointrail.interfaces.api import ApiConfig, create_app
from cointrail.settings import Settings
from tests.unit.api.conftest import Keys

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def api_schema(settings: Settings) -> Any:
    config = ApiConfig(rate_per_second=100_000, burst=100_000, max_batch=20)
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, config))


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_schema_lists_every_route(api_schema: Any) -> None:
    paths = {op.path for op in operations(api_schema)}
    assert {"/health", "/api/v1/screen", "/api/v1/trace/{direction}"} <= paths


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_server_errors(api_schema: Any, keys: Keys, mode: str) -> None:
    headers = {"Authorization": f"Bearer {keys.admin}"}
    failures: list[str] = []
    calls = 0
    from schemathesis import GenerationMode

    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE
    for op in operations(api_schema):
        try:
            strategy = op.as_strategy(generation_mode=generation)
        except Exception:  # an operation with nothing to negate
            if mode == "negative":
                continue
            raise

        @given(case=strategy, salt=st.just(op.path))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: Any, salt: str) -> None:
            nonlocal calls
            response = case.call(headers=headers)
            calls += 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} "
                                f"{case.body!r:.200}: {response.status_code} {response.text:.300}")
            content_type = response.headers["content-type"]
            if isinstance(content_type, list):
                content_type = content_type[0]
            assert content_type.startswith("application/json")

        try:
            run()
        except Unsatisfiable:  # no parameter to make invalid (e.g. /health, /api/v1/me)
            assert mode == "negative", op.path
    assert calls > 100
    assert failures == []
