#!/usr/bin/env bash
# Starts Airlock on this machine (idempotent):
#   the control plane on its embedded SQLite store, and one sidecar enrolled to it.
# Prints the console URL and the bootstrap admin credentials, then follows both logs; Ctrl+C stops both.
#
#   AIRLOCK_STATE   state directory (default: ./.state)
#   AIRLOCK_PORT    console/REST port (default 5080; PolicySync gRPC uses +1, the sidecar's health port 5090)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_dotnet

STATE="$(realpath -m "${AIRLOCK_STATE:-.state}")"
PORT="${AIRLOCK_PORT:-5080}"
GRPC_PORT=$((PORT + 1))
SIDECAR_PORT="${AIRLOCK_SIDECAR_PORT:-5090}"
URL="http://127.0.0.1:$PORT"
mkdir -p "$STATE/logs"
chmod 700 "$STATE"

echo "==> building (Release)"
dotnet build ControlPlane/ControlPlane.csproj -c Release -nologo -v quiet
dotnet build Sidecar/Host/Sidecar.csproj -c Release -nologo -v quiet
CP_DLL="$PWD/ControlPlane/bin/Release/net10.0/ControlPlane.dll"
SC_DLL="$PWD/Sidecar/Host/bin/Release/net10.0/Sidecar.dll"

# Bootstrap credentials are generated once and kept (0600) so every run can print them.
if [ ! -f "$STATE/bootstrap.env" ]; then
  umask 077
  {
    echo "AIRLOCK_BOOTSTRAP_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
    echo "AIRLOCK_BOOTSTRAP_API_KEY=ak_$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  } > "$STATE/bootstrap.env"
fi
set -a; source "$STATE/bootstrap.env"; set +a

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_healthy URL NAME: until URL answers 2xx, or NAME's process has died.
wait_healthy() {
  for _ in $(seq 1 120); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    running "$STATE/$2.pid" || { echo "error: the $2 stopped; see $STATE/logs/$2.log" >&2; tail -20 "$STATE/logs/$2.log" >&2; exit 1; }
    sleep 0.5
  done
  echo "error: the $2 did not become healthy at $1; see $STATE/logs/$2.log" >&2
  exit 1
}

if running "$STATE/controlplane.pid"; then
  echo "==> control plane already running (pid $(cat "$STATE/controlplane.pid"))"
else
  echo "==> starting the control plane on $URL (store: $STATE/controlplane/airlock.db)"
  nohup dotnet "$CP_DLL" \
    "--Airlock:StateDirectory=$STATE/controlplane" \
    "--Kestrel:Endpoints:Http:Url=$URL" \
    "--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:$GRPC_PORT" \
    > "$STATE/logs/controlplane.log" 2>&1 &
  echo $! > "$STATE/controlplane.pid"
fi
wait_healthy "$URL/healthz" controlplane

api() { curl -sS -H "Authorization: Bearer $AIRLOCK_BOOTSTRAP_API_KEY" -H "Content-Type: application/json" "$@"; }

if running "$STATE/sidecar.pid"; then
  echo "==> sidecar already running (pid $(cat "$STATE/sidecar.pid"))"
else
  TOKEN_ARGS=()
  if [ ! -f "$STATE/sidecar/identity.json" ]; then
    echo "==> enrolling sidecar 'demo-sidecar'"
    api -o /dev/null -X POST "$URL/api/v1/sidecars" -d '{"name":"demo-sidecar","description":"started by scripts/run.sh"}' || true
    TOKEN="$(api -X POST "$URL/api/v1/sidecars/demo-sidecar/enrollment-tokens" -d '{"ttlMinutes":10}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')"
    [ -n "$TOKEN" ] || { echo "error: could not create an enrollment token" >&2; exit 1; }
    TOKEN_ARGS=(--enrollment-token "$TOKEN")
  fi
  echo "==> starting the sidecar (health: http://127.0.0.1:$SIDECAR_PORT/readyz)"
  nohup dotnet "$SC_DLL" --control-plane "$URL" --state-dir "$STATE/sidecar" "${TOKEN_ARGS[@]}" \
    "--Kestrel:Endpoints:Http:Url=http://127.0.0.1:$SIDECAR_PORT" \
    > "$STATE/logs/sidecar.log" 2>&1 &
  echo $! > "$STATE/sidecar.pid"
fi
wait_healthy "http://127.0.0.1:$SIDECAR_PORT/readyz" sidecar

cat <<INFO

  Airlock is running.

  Console        $URL   (sign in as: admin / $AIRLOCK_BOOTSTRAP_ADMIN_PASSWORD)
  Admin API key  $AIRLOCK_BOOTSTRAP_API_KEY
  Sidecar        demo-sidecar, ready: http://127.0.0.1:$SIDECAR_PORT/readyz
  Policy         curl -H "Authorization: Bearer $AIRLOCK_BOOTSTRAP_API_KEY" "$URL/api/v1/policy?format=yaml"
  Logs           $STATE/logs/   State: $STATE   Stop: Ctrl+C here, or scripts/stop.sh

INFO

stop() {
  echo "==> stopping"
  for p in sidecar controlplane; do
    running "$STATE/$p.pid" && kill "$(cat "$STATE/$p.pid")" 2>/dev/null || true
    rm -f "$STATE/$p.pid"
  done
}
if [ -t 1 ] && [ "${AIRLOCK_DETACH:-0}" != "1" ]; then
  trap stop INT TERM
  tail -n 0 -F "$STATE/logs/controlplane.log" "$STATE/logs/sidecar.log" &
  TAIL=$!
  wait "$(cat "$STATE/controlplane.pid")" 2>/dev/null || while running "$STATE/controlplane.pid"; do sleep 1; done
  kill $TAIL 2>/dev/null || true
fi
