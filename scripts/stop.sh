#!/usr/bin/env bash
# Stops what scripts/run.sh started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
STATE="$(realpath -m "${AIRLOCK_STATE:-.state}")"
for p in sidecar controlplane; do
  if [ -f "$STATE/$p.pid" ] && kill -0 "$(cat "$STATE/$p.pid")" 2>/dev/null; then
    kill "$(cat "$STATE/$p.pid")" && echo "stopped $p"
  fi
  rm -f "$STATE/$p.pid"
done
if [ -f "$STATE/demo-postgres/postmaster.pid" ]; then
  as_pg_user "$(pg_bin)/pg_ctl" -D "$STATE/demo-postgres" stop -m fast >/dev/null && echo "stopped the demo PostgreSQL"
fi
