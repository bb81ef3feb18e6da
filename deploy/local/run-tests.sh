#!/usr/bin/env bash
# Runs the whole test suite, slow and fault-injection tests included.
# pytest's exit code 5 means no test ran: that is a failure here, said out loud.
set -uo pipefail
cd "$(dirname "$0")/../.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; failing the run" >&2
  exit 1
fi
exit "$rc"
