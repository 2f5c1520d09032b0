#!/usr/bin/env bash
# The numbers of docs/benchmarks.md beyond `make compare`, against the running stack:
#   tls     nginx's TLS overhead: /healthz answered by nginx itself over HTTPS vs plain HTTP
#           (the status port), with keep-alive and with a new connection per request
#   overhead  one Django JSON endpoint straight at Gunicorn vs through nginx over TLS
#   static  one static file from nginx (HTTPS) vs the same file from Django/WhiteNoise (HTTP)
#   cards   the Django card list (a board of 50 cards, one page, logged in) straight at Gunicorn  # example
#           and through nginx over TLS, at 8 and 32 connections  # example
#   fanout  1,000 WebSocket subscribers + 1 writer (Locust, profile fanout): connect time,  # example
#           fan-out p50/p99, and the memory per held connection (asgi and nginx containers)  # example
# wrk runs in a container on the stack's backend network (the project's own containers);
# Locust runs on the host network against the published 127.0.0.1 port. The stack needs
# NGINX_RATE_ALLOWLIST to cover the generators (see docs/benchmarks.md), or nginx answers 429.
# Usage: COMPOSE_PROJECT_NAME=... HTTPS_PORT=... loadtest/bench.sh [STEP...] (default: every step
# but overhead)
set -o errexit -o pipefail -o nounset

cd "$(dirname "$0")/.."
project=${COMPOSE_PROJECT_NAME:-pykit}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=loadtest/reports/bench-$stamp
mkdir -p "$out" && chmod 0777 "$out"
duration=${BENCH_DURATION:-15}
# Static names are hashed (and only the hashed copies are kept): take the admin stylesheet's.
static_file=${BENCH_STATIC_FILE:-$(docker exec "$project-nginx-1" sh -c \
  'ls /srv/static/admin/css/base.*.css | head -n 1' | sed 's|^/srv||')}

docker compose -f loadtest/compose.yaml build --quiet locust
wrk_bench() {  # name, then compare.py arguments
  local name=$1
  shift
  docker run --rm --network "${project}_backend" -v "$PWD/$out:/reports" \
    -e COMPARE_USER=bench -e COMPARE_PASSWORD="${password:-}" \
    --entrypoint python pykit-locust /app/compare.py --out "/reports/$name" "$@"
}
machine="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "bench: $machine; load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/machine.txt"

steps="tls static"
steps+=" cards fanout"  # example
for what in "${@:-$steps}"; do
  for step in $what; do
    case $step in
      tls)
        wrk_bench tls-keepalive --concurrency 50 --duration "$duration" --title "nginx /healthz, keep-alive" \
          --target "keep-alive: HTTP=http://nginx:8081/healthz" \
          --target "keep-alive: HTTPS=https://nginx:8443/healthz"
        wrk_bench tls-new-connection --concurrency 50 --duration "$duration" \
          --title "nginx /healthz, a new connection (TLS handshake) per request" \
          --header "Connection: close" \
          --target "new connection: HTTP=http://nginx:8081/healthz" \
          --target "new connection: HTTPS=https://nginx:8443/healthz"
        ;;
      overhead)
        # The same Django JSON endpoint straight at Gunicorn and through nginx (TLS, keep-alive).
        wrk_bench nginx-overhead --concurrency 50 --duration "$duration" \
          --title "Django /api/healthz: direct vs through nginx" \
          --target "direct: Gunicorn (HTTP)=http://wsgi:8000/api/healthz" \
          --target "through nginx: HTTPS, keep-alive=https://nginx:8443/api/healthz"
        ;;
      static)
        wrk_bench static --concurrency 50 --duration "$duration" --title "$static_file" \
          --header "Accept-Encoding: gzip" \
          --target "static file: nginx (HTTPS)=https://nginx:8443$static_file" \
          --target "static file: Django + WhiteNoise under Gunicorn (HTTP)=http://wsgi:8000$static_file"
        ;;
      # example-begin
      cards)
        password=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)
        docker exec "$project-wsgi-1" python manage.py ensure_user bench --password "$password" >/dev/null
        wrk_bench card-list --login http://wsgi:8000 --cards 50 --concurrency 8,32 \
          --duration "$duration" --title "Django card list (50 cards), one page, logged in" \
          --target "card list: straight at Gunicorn (HTTP)=http://wsgi:8000/api/boards/{board}/cards/" \
          --target "card list: through nginx (HTTPS, keep-alive)=https://nginx:8443/api/boards/{board}/cards/"
        ;;
      fanout)
        stats() { docker stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.CPUPerc}}' \
          "$project-asgi-1" "$project-nginx-1"; }
        stats | sed 's/^/before /' | tee "$out/fanout-memory.txt"
        ./loadtest/run.sh fanout >"$out/fanout.log" 2>&1 &
        run=$!
        sleep "${BENCH_PLATEAU_AT:-75}"  # all 1,001 users spawned (50/s) and holding
        stats | sed 's/^/held /' | tee -a "$out/fanout-memory.txt"
        status=0
        wait "$run" || status=$?
        grep -A12 "^SLO gate" "$out/fanout.log" | tee -a "$out/fanout-memory.txt" || true
        echo "fanout: locust exit $status; report in $(grep -o 'loadtest/reports/[0-9TZ]*' "$out/fanout.log" | tail -1)"
        ;;
      # example-end
      *) echo "unknown step $step (choose from: $steps overhead)" >&2; exit 2 ;;
    esac
  done
done
# One summary: every wrk table, then the fan-out gates and memory.
cat "$out"/*/compare.md "$out"/fanout-memory.txt 2>/dev/null >"$out/summary.md" || true
cat "$out/summary.md"
echo "bench: results in $out (summary.md)"
