"""The curated public surface: what `import cointrail` promises."""

from __future__ import annotations

import cointrail
from cointrail.errors import (
    CointrailError,
    DecodeError,
    ExternalServiceError,
    InputError,
    NotFoundError,
    Problem,
    StoreError,
    ValidationError,
    exit_code_for,
    http_status_for,
)


def test_public_names() -> None:
    assert set(cointrail.__all__) >= {"decode_block", "decode_tx", "ChainSpec", "CointrailError"}
    for name in cointrail.__all__:
        assert hasattr(cointrail, name), name


def test_error_tree_maps_to_exit_codes_and_http() -> None:
    assert exit_code_for(DecodeError("x", 3)) == 2
    assert exit_code_for(NotFoundError("x")) == 2
    assert exit_code_for(StoreError("x")) == 1
    assert exit_code_for(ExternalServiceError("x")) == 1
    assert http_status_for(DecodeError("x", 0)) == 400
    assert http_status_for(NotFoundError("x")) == 404
    assert http_status_for(ExternalServiceError("x")) == 502
    for cls in (InputError, NotFoundError, StoreError, ExternalServiceError, ValidationError):
        assert issubclass(cls, CointrailError)


def test_validation_error_keeps_every_problem() -> None:
    problems = [Problem("tags.yaml", i, f"bad {i}") for i in range(1, 8)]
    err = ValidationError("7 problems", problems)
    assert len(err.problems) == 7
    assert "tags.yaml:1: bad 1" in str(err)
    assert "(and 2 more)" in str(err)


def test_decode_error_carries_offset() -> None:
    err = DecodeError("truncated", 42)
    assert err.offset == 42
    assert "offset 42" in str(err)
