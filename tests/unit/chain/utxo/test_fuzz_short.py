"""A short deterministic fuzz run of the decoders (the engine of bench/fuzz.py).

Every mutated real block or transaction must decode and re-encode to itself, or raise
DecodeError, in time. The oracle itself is checked too: it must flag a foreign exception,
a slow decode and a hang.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from cointrail.errors import DecodeError
from tests.support import fuzzing
from tests.support.data import require_shared, shared_data
from tests.support.fuzzing import Case, Options, check_case, load_corpus, make_case, run_range

SEED = 20_240_601
COUNT = 2_000


@pytest.fixture(scope="module")
def options() -> Options:
    require_shared("btc/blocks/mainnet-000000-000438.blk")
    return Options(shared_data(), large_share=0.005, time_limit=10.0)


def describe(result: fuzzing.Result) -> str:
    lines = [f"{n} x {sig}" for sig, n in result.failure_counts]
    for f in result.failures:
        c = f.case
        lines.append(
            f"seed {c.seed} index {c.index}: decode_{c.target}({c.chain}) after "
            f"{'+'.join(c.mutations)} of {c.origin}: {f.error} at {f.where}; "
            f"hex {c.data[:64].hex()}"
        )
    return "\n".join(lines)


def test_short_fuzz_run_has_no_failures(options: Options) -> None:
    result = run_range(SEED, 0, COUNT, options)
    assert result.count == COUNT
    assert result.decoded > 0 and result.rejected > 0
    assert result.failed == 0, describe(result)


def test_cases_are_deterministic_and_varied(options: Options) -> None:
    corpus = load_corpus(options.data_dir)
    assert len(corpus.large) == 4 and len(corpus.small) > 1000
    cases = [make_case(corpus, SEED, i, 0.01) for i in range(COUNT)]
    assert cases == [make_case(corpus, SEED, i, 0.01) for i in range(COUNT)]
    used = Counter(m for c in cases for m in c.mutations)
    assert set(used) == {name for name, _, _ in fuzzing.MUTATORS}
    assert {c.chain for c in cases} == {name for name, _ in fuzzing.CHAINS}
    assert {c.target for c in cases} == {"block", "tx"}
    assert any(len(c.data) > 500_000 for c in cases)  # some large-block inputs


def _case(data: bytes = b"\x01\x00\x00\x00") -> Case:
    return Case(0, 0, "tx", "bitcoin", data, "test", ())


def test_oracle_flags_foreign_exceptions(options: Options, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> object:
        raise KeyError("decoder bug")

    monkeypatch.setattr(fuzzing, "decode_tx", boom)
    outcome, _, failure = check_case(_case(), options)
    assert outcome == "failed" and failure is not None
    assert failure.category == "exception" and failure.error.startswith("KeyError")

    def reject(*args: object) -> object:
        raise DecodeError("bad", 0)

    monkeypatch.setattr(fuzzing, "decode_tx", reject)
    assert check_case(_case(), options)[0] == "rejected"


def test_oracle_flags_slow_and_hanging_decodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def sleepy(*args: object) -> object:
        time.sleep(0.3)
        raise DecodeError("late", 0)

    monkeypatch.setattr(fuzzing, "decode_tx", sleepy)
    slow = check_case(_case(), Options(tmp_path, time_limit=0.05, hard_limit_factor=100))
    assert slow[2] is not None and slow[2].category == "slow"
    hung = check_case(_case(), Options(tmp_path, time_limit=0.02, hard_limit_factor=2))
    assert hung[2] is not None and hung[2].category == "timeout"


def test_mweb_presence_without_body_regression(options: Options) -> None:
    """Found by bench/fuzz.py (seed 1, index 2702): a standalone Litecoin transaction with the
    MWEB flag, presence byte 0x01 and an empty MWEB body decodes as a HogEx (mweb_data b"") and
    re-encodes with presence byte 0x00. With fewer than 4 bytes after the presence byte,
    ``ByteReader.read`` gets a negative length and moves backwards, and the lock time is read
    from bytes already consumed. Either should be a DecodeError."""
    version, marker = (1).to_bytes(4, "little"), b"\x00\x08"
    body = b"\x01" + b"\x11" * 32 + bytes(4) + b"\x00" + b"\xff" * 4  # one input
    body += b"\x01" + (5).to_bytes(8, "little") + b"\x01\x51"  # one output
    for tail in (b"\x01" + bytes(4), b"\x01\xaa\xbb"):
        outcome, _, failure = check_case(
            Case(0, 0, "tx", "litecoin", version + marker + body + tail, "hand-made", ()),
            options,
        )
        assert outcome == "rejected", failure
