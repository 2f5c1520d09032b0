#!/usr/bin/env bash
# `make compare`: the WSGI-vs-ASGI claim in numbers, on a stack of its own (started here,
# removed at the end). Same process count on both sides; wrk on the backend network hits the
# app servers directly, so nginx, TLS and rate limits are out of the comparison.
#   io-wait:  GET /api/io-wait?ms=100 (Gunicorn gthread + Django: a thread blocks in BLPOP)
#        vs  GET /rt/io-wait?ms=100  (Uvicorn + FastAPI: the event loop awaits the same BLPOP)
#   crud-list: GET /api/boards/ on Gunicorn + Django vs the same Django under Uvicorn (ASGI)  # example
# Output: loadtest/reports/compare-<timestamp>/compare.{csv,md,png} (+ container CPU samples).
#
# Environment: COMPARE_PROCESSES (2), COMPARE_THREADS (Gunicorn threads per worker, 4),
# COMPARE_CONCURRENCY (10,50,100,250,500), COMPARE_DURATION (seconds per point, 15),
# COMPOSE_PROJECT_NAME (the stack's; -compare is added).
set -o errexit -o pipefail -o nounset

cd "$(dirname "$0")/.."

processes=${COMPARE_PROCESSES:-2}
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-pykit}-compare"
export GUNICORN_WORKERS=$processes GUNICORN_THREADS=${COMPARE_THREADS:-4} UVICORN_WORKERS=$processes
# The io-wait endpoints need a login; the bench logs in once, so its token must last the run.
export REALTIME_TOKEN_TTL=${REALTIME_TOKEN_TTL:-3600}
# nginx is not started; these only keep compose.yaml's interpolation away from real ports.
export HTTP_PORT=0 HTTPS_PORT=0 BIND_ADDRESS=127.0.0.1

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=loadtest/reports/compare-$stamp
mkdir -p "$out" && chmod 0777 "$out"  # the bench runs as the image's non-root user
export COMPARE_OUT=$PWD/$out

compose=(docker compose -f compose.yaml -f loadtest/compose.compare.yaml)

cleanup() {
  [ -n "${stats_pid:-}" ] && kill "$stats_pid" 2>/dev/null || true
  "${compose[@]}" --profile bench down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "compare: building (project $COMPOSE_PROJECT_NAME)"
docker compose -f loadtest/compose.yaml build --quiet locust
"${compose[@]}" build --quiet wsgi asgi
"${compose[@]}" build --quiet django-asgi  # FROM the wsgi image just built

echo "compare: starting wsgi ($processes workers x $GUNICORN_THREADS threads), asgi and django-asgi ($processes workers each)"
"${compose[@]}" up --detach --wait --wait-timeout 240 wsgi asgi django-asgi

COMPARE_USER=compare
COMPARE_PASSWORD=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)
"${compose[@]}" exec -T wsgi python manage.py ensure_user "$COMPARE_USER" --password "$COMPARE_PASSWORD" >/dev/null

# What the servers use while the bench runs: is the generator or the server the limit?
names=("$COMPOSE_PROJECT_NAME-wsgi-1" "$COMPOSE_PROJECT_NAME-asgi-1" "$COMPOSE_PROJECT_NAME-django-asgi-1"
  "$COMPOSE_PROJECT_NAME-redis-1" "$COMPOSE_PROJECT_NAME-postgres-1")
while sleep 5; do
  docker stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}}' "${names[@]}" |
    sed "s/^/$(date -u +%H:%M:%S) /"
done >"$out/container-stats.txt" 2>/dev/null &
stats_pid=$!

machine="$(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "compare: $machine; load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/machine.txt"

targets=(
  --target "io-wait 100 ms: Gunicorn + Django (WSGI)=http://wsgi:8000/api/io-wait?ms=100"
  --target "io-wait 100 ms: Uvicorn + FastAPI (ASGI)=http://asgi:8001/rt/io-wait?ms=100"
  --target "CRUD list /api/boards/: Gunicorn + Django (WSGI)=http://wsgi:8000/api/boards/"  # example
  --target "CRUD list /api/boards/: Uvicorn + Django (ASGI)=http://django-asgi:8002/api/boards/"  # example
)
"${compose[@]}" --profile bench run --rm \
  -e COMPARE_USER="$COMPARE_USER" -e COMPARE_PASSWORD="$COMPARE_PASSWORD" bench \
  --out /reports --login http://wsgi:8000 \
  --concurrency "${COMPARE_CONCURRENCY:-10,50,100,250,500}" --duration "${COMPARE_DURATION:-15}" \
  --title "Same process count ($processes): Gunicorn gthread x$GUNICORN_THREADS vs Uvicorn; $machine" \
  "${targets[@]}"

echo "compare: load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
echo "compare: $out/compare.md, $out/compare.png"
