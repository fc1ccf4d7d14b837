#!/usr/bin/env bash
# Runs the whole suite. Assumes scripts/bootstrap.sh ran (make test does that).
# Services the tests need (redis-server, SIPp, baresip) are started by the tests' own fixtures
# on loopback, on free ports, and stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${IVR_VENV:-.venv}
"$VENV/bin/ruff" check .
"$VENV/bin/mypy"  # packages and settings in pyproject.toml
exec "$VENV/bin/python" -m pytest -n 2 --dist loadgroup "$@"
