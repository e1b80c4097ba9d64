#!/usr/bin/env bash
# Stops what scripts/run.sh started.
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
