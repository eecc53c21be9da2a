# Sourced by scripts/demo.sh and bench/images_bench.sh: serves a directory of images
# with Debian's nginx on a free loopback port, as any user, with every file it
# writes (config, pid, logs, temp) under a directory of the caller's.
#
#   source scripts/nginx_serve.sh
#   nginx_start ROOT_DIR STATE_DIR    # sets NGINX_PORT and NGINX_PID
#   nginx_stop
#
# One worker process: on a small machine nginx shares the cores with sluice. Open
# files are cached (a static image server's usual setting): ~13% less CPU per
# request than an open, fstat and close each time.

nginx_start() {
  local root="$1" state="$2"
  mkdir -p "$state/tmp"
  NGINX_PORT=$(python3 -c \
    "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  local user_line=""
  # As root, nginx's workers would switch to www-data, which cannot read a 0700 tmp dir.
  [ "$(id -u)" -eq 0 ] && user_line="user root root;"
  cat > "$state/nginx.conf" <<EOF
daemon off;
worker_processes 1;
$user_line
pid $state/nginx.pid;
error_log $state/error.log;
worker_rlimit_nofile 20000;
events { worker_connections 16384; }
http {
  access_log off;
  client_body_temp_path $state/tmp; proxy_temp_path $state/tmp;
  fastcgi_temp_path $state/tmp; uwsgi_temp_path $state/tmp; scgi_temp_path $state/tmp;
  types { image/jpeg jpg jpeg; image/png png; image/webp webp; text/plain txt; }
  sendfile on; tcp_nopush on; keepalive_requests 1000000; keepalive_timeout 120s;
  open_file_cache max=20000 inactive=120s; open_file_cache_valid 120s;
  server { listen 127.0.0.1:$NGINX_PORT; root $root; }
}
EOF
  nginx -c "$state/nginx.conf" -p "$state" &
  NGINX_PID=$!
  local _
  for _ in $(seq 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $NGINX_PORT), 1)" \
        2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "nginx did not start; see $state/error.log" >&2
  return 1
}

nginx_stop() {
  if [ -n "${NGINX_PID:-}" ]; then
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
  fi
}
