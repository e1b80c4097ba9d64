#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine (idempotent):
#   1. installs what the suite needs (PostgreSQL server and clients incl. pgbench, Chromium, Node.js
#      and npm, Redis) from Debian packages, and node-postgres from npm into tests/node,
#   2. starts a private PostgreSQL on 127.0.0.1:${AIRLOCK_TEST_PG_PORT:-55432} and a private Redis on
#      127.0.0.1:${AIRLOCK_TEST_REDIS_PORT:-56379} (the control planes' backplane in the replica tests); both
#      keep running afterwards (scripts/stop.sh stops them),
#   3. restores, builds and runs every test project in ControlPlane.sln.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_dotnet
ensure_packages "/usr/lib/postgresql/*/bin/initdb:postgresql" "psql:postgresql-client" "pgbench:postgresql-contrib" \
  "chromium:chromium" "runuser:util-linux" "node:nodejs" "npm:npm" "redis-server:redis-server"
echo "==> npm packages for the node-postgres tests"
(cd tests/node && npm install --no-audit --no-fund --loglevel=error)

PG_PORT="${AIRLOCK_TEST_PG_PORT:-55432}"
PG_DIR="${AIRLOCK_TEST_PG_DIR:-/tmp/airlock-test-postgres}"
start_postgres "$PG_DIR" "$PG_PORT"
export AIRLOCK_TEST_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=postgres;Include Error Detail=true"
REDIS_PORT="${AIRLOCK_TEST_REDIS_PORT:-56379}"
start_redis "${AIRLOCK_TEST_REDIS_DIR:-/tmp/airlock-test-redis}" "$REDIS_PORT"
export AIRLOCK_TEST_REDIS="127.0.0.1:$REDIS_PORT"
export AIRLOCK_CHROMIUM="${AIRLOCK_CHROMIUM:-/usr/bin/chromium}"

echo "==> $("$AIRLOCK_CHROMIUM" --version 2>/dev/null || echo "no Chromium at $AIRLOCK_CHROMIUM"), $(df -h /dev/shm 2>/dev/null | awk 'NR == 2 {print "/dev/shm " $2}')"
echo "==> building"
dotnet build ControlPlane.sln -c Release -nologo -v quiet
echo "==> testing"
LOG="$(mktemp)"
set +e
dotnet test ControlPlane.sln -c Release --no-build -nologo --logger "console;verbosity=normal" "$@" 2>&1 | tee "$LOG"
STATUS=${PIPESTATUS[0]}
set -e
# Sum the per-project totals (awk, not grep: a count with no matching line is 0, not an error).
total() { awk -v key="$1" '$1 == key":" && $2 ~ /^[0-9]+$/ && NF == 2 {s += $2} END {print s + 0}' "$LOG"; }
PASSED=$(total Passed)
FAILED=$(total Failed)
SKIPPED=$(total Skipped)
# The failures again at the end, each with the start of its message: a long log's tail names them.
if [ "$FAILED" != "0" ]; then
  echo "==> failed tests"
  awk '/^  Failed [A-Za-z]/ {print; grab = 8; next} grab > 0 && !/^\s*Stack Trace:/ {print; grab--; next} /^\s*Stack Trace:/ {grab = 0}' "$LOG" | cut -c1-400
fi
rm -f "$LOG"
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
exit "$STATUS"
