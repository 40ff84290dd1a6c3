#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it:
# services (litecoind, ...), a virtualenv with cointrail and its test dependencies,
# ruff, mypy and pytest. Extra arguments go to pytest. Exit code: pytest's, except that
# "no tests collected" (pytest exit 5) is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-services.sh

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'

echo "== ruff"
.venv/bin/ruff check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests; that is a failure, not a pass" >&2
    exit 1
fi
exit "$rc"
