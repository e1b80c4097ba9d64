#!/usr/bin/env bash
# Starts Airlock on this machine (idempotent):
#   the control plane on its embedded SQLite store, one sidecar enrolled to it, and a demo
#   PostgreSQL target (a throw-away cluster in the state directory) with a demo agent that may use it.
# Prints the console URL, the bootstrap admin credentials and a ready-to-paste psql line through the
# sidecar, then follows the logs; Ctrl+C stops everything. With AIRLOCK_DETACH=1 (or output that is not
# a terminal) it returns once everything is up; scripts/stop.sh stops it.
#
#   AIRLOCK_STATE           state directory (default: ./.state)
#   AIRLOCK_PORT            console/REST port (default 5080; PolicySync gRPC uses +1, the sidecar's health port 5090)
#   AIRLOCK_DEMO_PG_PORT    the demo PostgreSQL cluster (default 55433, loopback)
#   AIRLOCK_DEMO_LISTEN     the sidecar's listener for the demo target (default 6432, loopback)
#   AIRLOCK_MCP_PORT        the sidecar's MCP front door for AI agents (default 5443, loopback, HTTPS)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_dotnet
ensure_packages "curl:curl" "openssl:openssl" "psql:postgresql-client" "/usr/lib/postgresql/*/bin/initdb:postgresql"

STATE="$(realpath -m "${AIRLOCK_STATE:-.state}")"
# The demo cluster runs as the 'postgres' OS user, so it lives beside the state directory, not in it
# (the state directory holds keys and secrets and stays 0700).
DEMO_PG_DIR="${AIRLOCK_DEMO_PG_DIR:-$STATE-demo-postgres}"
PORT="${AIRLOCK_PORT:-5080}"
GRPC_PORT=$((PORT + 1))
SIDECAR_PORT="${AIRLOCK_SIDECAR_PORT:-5090}"
DEMO_PG_PORT="${AIRLOCK_DEMO_PG_PORT:-55433}"
DEMO_LISTEN="${AIRLOCK_DEMO_LISTEN:-6432}"
MCP_PORT="${AIRLOCK_MCP_PORT:-5443}"
MCP_URL="https://localhost:$MCP_PORT/mcp"
URL="http://127.0.0.1:$PORT"
mkdir -p "$STATE/logs"
# Owner only: the state directory holds the control plane's store, its key-ring certificate, the
# sidecar's identity and the bootstrap secrets.
chmod 700 "$STATE"
if [ -d "$STATE/demo-postgres" ] && [ ! -e "$DEMO_PG_DIR" ]; then
  # An earlier version kept the demo cluster inside the state directory: move it out.
  as_pg_user "$(pg_bin)/pg_ctl" -D "$STATE/demo-postgres" stop -m fast >/dev/null 2>&1 || true
  mv "$STATE/demo-postgres" "$DEMO_PG_DIR"
fi

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
if ! grep -q DEMO_PG_PASSWORD "$STATE/bootstrap.env"; then
  (umask 077; echo "DEMO_PG_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" >> "$STATE/bootstrap.env")
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

# The demo target: a private cluster on loopback; the sidecar logs in as demo_app with SCRAM.
start_postgres "$DEMO_PG_DIR" "$DEMO_PG_PORT"
PGBIN="$(pg_bin)"
# (initdb wrote "trust"; the comments in its file mention scram-sha-256, so look for the rule itself)
if ! grep -Eq "^host[[:space:]]+all[[:space:]]+all[[:space:]]+127.0.0.1/32[[:space:]]+scram-sha-256" "$DEMO_PG_DIR/pg_hba.conf"; then
  printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' > "$DEMO_PG_DIR/pg_hba.conf"
  as_pg_user "$PGBIN/pg_ctl" -D "$DEMO_PG_DIR" reload >/dev/null
fi
demo_psql() { as_pg_user "$PGBIN/psql" -X -q -h "$DEMO_PG_DIR" -p "$DEMO_PG_PORT" -U postgres "$@"; }
if ! demo_psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'demo'" | grep -q 1; then
  echo "==> creating the demo database"
  demo_psql -d postgres -c "CREATE ROLE demo_app LOGIN PASSWORD '$DEMO_PG_PASSWORD'" -c "CREATE DATABASE demo OWNER demo_app"
  demo_psql -d demo -c "SET ROLE demo_app" -c "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL, plan text NOT NULL)" \
    -c "INSERT INTO customers (name, email, plan) VALUES ('Ada Lovelace', 'ada@example.com', 'pro'), ('Alan Turing', 'alan@example.com', 'free'), ('Grace Hopper', 'grace@example.com', 'team')"
fi

# The sidecar's TLS certificate for agents (self-signed; psql sslmode=require encrypts without checking it).
if [ ! -f "$STATE/sidecar-tls/cert.pem" ]; then
  mkdir -p "$STATE/sidecar-tls" && chmod 700 "$STATE/sidecar-tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$STATE/sidecar-tls/key.pem" -out "$STATE/sidecar-tls/cert.pem" 2>/dev/null
fi

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
    TOKEN="$(api -X POST "$URL/api/v1/sidecars/demo-sidecar/enrollment-tokens" -d '{"ttlMinutes":10,"reenroll":true}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')"
    [ -n "$TOKEN" ] || { echo "error: could not create an enrollment token" >&2; exit 1; }
    TOKEN_ARGS=(--enrollment-token "$TOKEN")
  fi
  echo "==> starting the sidecar (health: http://127.0.0.1:$SIDECAR_PORT/readyz)"
  nohup dotnet "$SC_DLL" --control-plane "$URL" --state-dir "$STATE/sidecar" "${TOKEN_ARGS[@]}" \
    "--Kestrel:Endpoints:Http:Url=http://127.0.0.1:$SIDECAR_PORT" \
    "--Sidecar:Postgres:ListenAddress=127.0.0.1" \
    "--Sidecar:Postgres:CertificatePath=$STATE/sidecar-tls/cert.pem" "--Sidecar:Postgres:KeyPath=$STATE/sidecar-tls/key.pem" \
    "--Sidecar:Mcp:Enabled=true" "--Sidecar:Mcp:ListenAddress=127.0.0.1" "--Sidecar:Mcp:Port=$MCP_PORT" \
    > "$STATE/logs/sidecar.log" 2>&1 &
  echo $! > "$STATE/sidecar.pid"
fi
wait_healthy "http://127.0.0.1:$SIDECAR_PORT/readyz" sidecar

# Demo policy, created once (later runs leave your changes alone): target, role, agent, agent secret.
if [ "$(api -o /dev/null -w '%{http_code}' "$URL/api/v1/targets/demo")" = "404" ]; then
  echo "==> creating the demo target, role and agent"
  api -f -o /dev/null -X POST "$URL/api/v1/targets" -d "{\"name\":\"demo\",\"sidecar\":\"demo-sidecar\",\"listenPort\":$DEMO_LISTEN,\"upstream\":{\"host\":\"127.0.0.1\",\"port\":$DEMO_PG_PORT,\"database\":\"demo\",\"username\":\"demo_app\",\"tls\":\"prefer\",\"password\":\"$DEMO_PG_PASSWORD\"}}"
  api -f -o /dev/null -X PUT "$URL/api/v1/roles/demo-reader" -d '{"description":"demo role: reads the demo target (the agent-safe baseline)","baseline":"agent-safe","grants":[{"target":"demo"}]}'
  api -f -o /dev/null -X PUT "$URL/api/v1/agents/demo-agent" -d '{"role":"demo-reader","owner":"admin"}'
  rm -f "$STATE/demo-agent.secret"
fi
if [ ! -s "$STATE/demo-agent.secret" ]; then
  (umask 077; api -f -X POST "$URL/api/v1/agents/demo-agent/secret" | sed -n 's/.*"clientSecret":"\([^"]*\)".*/\1/p' > "$STATE/demo-agent.secret")
fi
DEMO_SECRET="$(cat "$STATE/demo-agent.secret")"
for _ in $(seq 1 60); do  # the sidecar opens the listener when the new snapshot arrives
  (exec 3<>"/dev/tcp/127.0.0.1/$DEMO_LISTEN") 2>/dev/null && break
  sleep 0.5
done

cat <<INFO

  Airlock is running.

  Console        $URL   (sign in as: admin / $AIRLOCK_BOOTSTRAP_ADMIN_PASSWORD)
  Admin API key  $AIRLOCK_BOOTSTRAP_API_KEY
  Sidecar        demo-sidecar, ready: http://127.0.0.1:$SIDECAR_PORT/readyz
  Policy         curl -H "Authorization: Bearer $AIRLOCK_BOOTSTRAP_API_KEY" "$URL/api/v1/policy?format=yaml"
  Demo target    PostgreSQL 'demo' on 127.0.0.1:$DEMO_PG_PORT, served by the sidecar on 127.0.0.1:$DEMO_LISTEN

  Connect as the demo agent through the sidecar (fetches a fresh 15-minute token, then runs psql;
  a failed token request is reported, not handed to psql as an empty password):

    TOKEN="\$(curl -fsS -d grant_type=client_credentials -d client_id=demo-agent -d client_secret=$DEMO_SECRET $URL/connect/token | sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')"; if [ -z "\$TOKEN" ]; then echo "no token from $URL/connect/token: is Airlock running (scripts/run.sh)?" >&2; else PGPASSWORD="\$TOKEN" psql "host=127.0.0.1 port=$DEMO_LISTEN dbname=demo user=demo-agent sslmode=require"; fi

  MCP            AI agents reach the demo target at $MCP_URL (tools list_targets, describe, query,
                 explain, approval_status). A token for it names it as the resource:

    curl -fsS -d grant_type=client_credentials -d client_id=demo-agent -d client_secret=$DEMO_SECRET -d resource=$MCP_URL $URL/connect/token

                 The certificate is self-signed: Node clients take NODE_EXTRA_CA_CERTS=$STATE/sidecar-tls/cert.pem.

  Logs           $STATE/logs/   State: $STATE   Stop: Ctrl+C here, or scripts/stop.sh

INFO

stop() {
  echo "==> stopping"
  for p in sidecar controlplane; do
    running "$STATE/$p.pid" && kill "$(cat "$STATE/$p.pid")" 2>/dev/null || true
    rm -f "$STATE/$p.pid"
  done
  as_pg_user "$(pg_bin)/pg_ctl" -D "$DEMO_PG_DIR" stop -m fast >/dev/null 2>&1 || true
}
if [ -t 1 ] && [ "${AIRLOCK_DETACH:-0}" != "1" ]; then
  trap stop INT TERM
  tail -n 0 -F "$STATE/logs/controlplane.log" "$STATE/logs/sidecar.log" &
  TAIL=$!
  wait "$(cat "$STATE/controlplane.pid")" 2>/dev/null || while running "$STATE/controlplane.pid"; do sleep 1; done
  kill $TAIL 2>/dev/null || true
fi
