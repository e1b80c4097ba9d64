# Shared by scripts/run.sh and scripts/test.sh. Everything here is idempotent.

# Installs the Debian packages whose commands are missing.
#   ensure_packages "cmd:package" ...
ensure_packages() {
  local missing=()
  for pair in "$@"; do
    local cmd="${pair%%:*}" pkg="${pair#*:}"
    if ! command -v "$cmd" >/dev/null 2>&1 && ! ls $cmd >/dev/null 2>&1; then
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_dotnet() {
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "error: the .NET 10 SDK is required (https://dot.net); 'dotnet' is not on PATH" >&2
    exit 1
  fi
}

pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

# Runs a command as the 'postgres' OS user when we are root (initdb refuses root), else as ourselves.
as_pg_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# start_postgres DATADIR PORT: a private cluster on 127.0.0.1:PORT, trust auth on loopback only.
start_postgres() {
  local dir="$1" port="$2" bin
  bin="$(pg_bin)"
  if [ -z "$bin" ]; then echo "error: PostgreSQL server binaries not found" >&2; exit 1; fi
  mkdir -p "$(dirname "$dir")"
  if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$dir" && chown postgres:postgres "$dir" && chmod 700 "$dir"
  fi
  if [ ! -f "$dir/PG_VERSION" ]; then
    echo "==> initdb $dir"
    as_pg_user "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if as_pg_user "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    return 0
  fi
  echo "==> starting PostgreSQL on 127.0.0.1:$port ($dir)"
  as_pg_user "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
}

# A private Redis on loopback (no persistence): the control planes' SignalR backplane in the replica tests.
start_redis() {
  local dir="$1" port="$2"
  mkdir -p "$dir"
  if redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
    return 0
  fi
  echo "==> starting Redis on 127.0.0.1:$port ($dir)"
  redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --dir "$dir" --save "" --appendonly no \
    --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" --protected-mode yes
  for _ in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: Redis did not start on 127.0.0.1:$port; see $dir/redis.log" >&2
  exit 1
}
