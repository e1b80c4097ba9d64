#!/usr/bin/env bash
# Stops what scripts/run.sh started, and the PostgreSQL and Redis the test command left running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
STATE="$(realpath -m "${AIRLOCK_STATE:-.state}")"
# The demo cluster runs as the 'postgres' OS user, so it lives beside the state directory, not in it
# (the state directory holds keys and secrets and stays 0700).
DEMO_PG_DIR="${AIRLOCK_DEMO_PG_DIR:-$STATE-demo-postgres}"
for p in sidecar controlplane; do
  if [ -f "$STATE/$p.pid" ] && kill -0 "$(cat "$STATE/$p.pid")" 2>/dev/null; then
    kill "$(cat "$STATE/$p.pid")" && echo "stopped $p"
  fi
  rm -f "$STATE/$p.pid"
done
if [ -f "$DEMO_PG_DIR/postmaster.pid" ]; then
  as_pg_user "$(pg_bin)/pg_ctl" -D "$DEMO_PG_DIR" stop -m fast >/dev/null && echo "stopped the demo PostgreSQL"
fi
# What the test command (scripts/test.sh) leaves running: its PostgreSQL and Redis.
TEST_PG_DIR="${AIRLOCK_TEST_PG_DIR:-/tmp/airlock-test-postgres}"
if [ -f "$TEST_PG_DIR/postmaster.pid" ]; then
  as_pg_user "$(pg_bin)/pg_ctl" -D "$TEST_PG_DIR" stop -m fast >/dev/null && echo "stopped the test PostgreSQL"
fi
TEST_REDIS_PORT="${AIRLOCK_TEST_REDIS_PORT:-56379}"
if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p "$TEST_REDIS_PORT" ping >/dev/null 2>&1; then
  redis-cli -h 127.0.0.1 -p "$TEST_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  echo "stopped the test Redis"
fi
