# Sourced by scripts/cluster-demo.sh and bench/cluster_bench.sh: a throwaway
# PostgreSQL 15 server on a free loopback port, its files under a directory of the
# caller's, trust authentication for the role "sluice".
#
#   source scripts/pg_serve.sh
#   pg_start STATE_DIR [durable]   # sets PG_PORT, PG_DATA and PG_URL (database "sluice")
#   pg_stop
#
# PostgreSQL refuses to run as root: as root, its files belong to the user "postgres"
# that Debian's postgresql package makes, and its programs run as that user.
# Without "durable", fsync is off (faster; enough for a demo).

PG_BIN=/usr/lib/postgresql/15/bin

pg_as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local state="$1" durable="${2:-}"
  mkdir -p "$state"
  [ "$(id -u)" -eq 0 ] && chown postgres "$state"
  PG_DATA="$state/data"
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U sluice -E UTF8 --locale=C \
    --no-sync >/dev/null
  PG_PORT=$(python3 -c \
    "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  local options="-c listen_addresses=127.0.0.1 -p $PG_PORT -k $state -c max_connections=200"
  [ "$durable" = durable ] || options="$options -c fsync=off -c full_page_writes=off"
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$state/server.log" -w -o "$options" start \
    >/dev/null
  pg_as_owner "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U sluice sluice
  PG_URL="postgresql://sluice@127.0.0.1:$PG_PORT/sluice"
}

pg_stop() {
  if [ -n "${PG_DATA:-}" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
  fi
}

# CPU seconds (user + system) the server has used: the postmaster, its children that
# ended (its cutime/cstime) and those that still run.
pg_cpu_seconds() {
  python3 - "$PG_DATA/postmaster.pid" <<'PY'
import os, sys
ticks = os.sysconf("SC_CLK_TCK")
postmaster = int(open(sys.argv[1]).readline())
def fields(pid):
    text = open(f"/proc/{pid}/stat").read()
    return text[text.rindex(")") + 2:].split()
total = 0
for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        f = fields(int(name))
    except OSError:
        continue
    pid, ppid = int(name), int(f[1])
    if pid == postmaster:
        total += sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    elif ppid == postmaster:
        total += int(f[11]) + int(f[12])
print(f"{total / ticks:.2f}")
PY
}
