#!/usr/bin/env bash
# `make bench`: the numbers of docs/benchmarks.md, headless, on a stack of its own
# (`<project>-bench`, started here and removed at the end), in one report folder:
#   tls       nginx's TLS overhead: /healthz answered by nginx itself over HTTPS vs plain HTTP
#             (the status port), with keep-alive and with a new connection per request
#   overhead  one Django JSON endpoint straight at Gunicorn vs through nginx over TLS
#   static    one static file from nginx (HTTPS) vs the same file from Django/WhiteNoise (HTTP)
#   cards     the Django card list (a board of 50 cards, one page, logged in) straight at  # example
#             Gunicorn and through nginx over TLS, at 8 and 32 connections  # example
#   stream    long streaming through nginx: N clients each receiving a 10 s token stream from
#             Django (Gunicorn) and FastAPI (Uvicorn), same process count (stream_bench.py)
#   peers     the kit's Gunicorn and Uvicorn configurations vs the peers' (compose.peers.yaml):
#             card list, a write, io-wait; req/s, latency, errors, memory per container
#   fanout    1,000 WebSocket subscribers + 1 writer (Locust, profile fanout): connect time,  # example
#             fan-out p50/p99, and the memory per held connection (asgi and nginx containers)  # example
#   ws        BENCH_WS_CONNECTIONS (20,000) WebSockets straight at the nginx container (asyncio  # example
#             clients in 2 processes, ws_bench.py): connected/failed, memory per  # example
#             connection in nginx and asgi, fan-out latency to all of them, the CPU per delivery  # example
# wrk and the stream clients run in a container on the stack's backend network; Locust on the
# host network against the published 127.0.0.1 port. nginx allow-lists both (rate limits off
# for the generators). Every measurement is bounded (BENCH_DURATION seconds per point, a
# deadline per stream level): about 8 minutes of measuring, plus the build and the start.
#
# Usage: loadtest/bench.sh [STEP...] (default: all). Environment: COMPOSE_PROJECT_NAME
# (-bench is added), BENCH_HTTP_PORT/BENCH_HTTPS_PORT (28080/28443 on 127.0.0.1),
# BENCH_DURATION (10), BENCH_DOC (docs/benchmarks.md: its "Last make bench run" part is
# replaced by this run's summary; empty: leave it). The ws step's, unset for ws_bench.py's
# defaults: BENCH_WS_CONNECTIONS (20000), BENCH_WS_HOLD (20: seconds held before the events),
# BENCH_WS_INTERVAL (2: seconds between events, room for one fan-out to end before the next),
# BENCH_WS_PROCS (2: generator processes, 16,384 open files each).
set -o errexit -o pipefail -o nounset

cd "$(dirname "$0")/.."
steps="tls overhead static"
steps+=" cards"  # example
steps+=" stream peers"
steps+=" fanout ws"  # example
for step in "${@:-$steps}"; do
  case " $steps " in *" $step "*) ;; *) echo "unknown step $step (choose from: $steps)" >&2; exit 2 ;; esac
done

project=${COMPOSE_PROJECT_NAME:-pykit}-bench
export COMPOSE_PROJECT_NAME=$project BIND_ADDRESS=127.0.0.1
export HTTP_PORT=${BENCH_HTTP_PORT:-28080} HTTPS_PORT=${BENCH_HTTPS_PORT:-28443}
# Same process count on both sides of the streaming comparison; the peers step runs the kit's
# own defaults in services of its own (compose.peers.yaml).
export GUNICORN_WORKERS=2 GUNICORN_THREADS=4 UVICORN_WORKERS=2
# One login lasts the whole run.
export REALTIME_TOKEN_TTL=3600
duration=${BENCH_DURATION:-10}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=loadtest/reports/bench-$stamp
mkdir -p "$out" && chmod 0777 "$out"  # the generators run as their image's non-root user
compose=(docker compose --env-file .env.example -f compose.yaml -f loadtest/compose.compare.yaml
  -f loadtest/compose.peers.yaml)
peers=(kit-gunicorn peer-gunicorn-sync peer-gunicorn-uvicorn-worker kit-uvicorn peer-fastapi-run)
start=$SECONDS
log() { printf '== bench: %s (%ss)\n' "$*" "$((SECONDS - start))"; }

cleanup() {
  log "removing the bench stack"
  "${compose[@]}" --profile bench down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "building (project $project)"
docker compose -f loadtest/compose.yaml build --quiet locust
"${compose[@]}" build --quiet nginx wsgi asgi
"${compose[@]}" build --quiet django-asgi  # FROM the wsgi image just built
"${compose[@]}" build --quiet peer-gunicorn-uvicorn-worker peer-fastapi-run  # FROM those

log "starting the stack"
"${compose[@]}" up --detach --wait --wait-timeout 300 nginx wsgi asgi migrate redis postgres \
  >"$out/up.log" 2>&1 || { cat "$out/up.log"; exit 1; }
# The peers after the kit's services, so they do not all start at once on 2 CPUs (and without
# their dependencies, which run already: no second release step). A peer that never turns
# healthy is reported (its step shows its errors), not a reason to stop.
if ! "${compose[@]}" up --detach --wait --wait-timeout 180 --no-deps "${peers[@]}" >>"$out/up.log" 2>&1; then
  tail -n 3 "$out/up.log"
  for peer in "${peers[@]}"; do
    "${compose[@]}" logs --tail 20 "$peer" >"$out/$peer.log" 2>&1 || true
  done
  log "a peer is not healthy; see $out/up.log and $out/<peer>.log"
fi
# The generators' addresses: the backend network (wrk, stream clients) and the edge network's
# gateway (Locust through the published port). nginx is recreated with them allow-listed.
backend=$(docker network inspect "${project}_backend" -f '{{(index .IPAM.Config 0).Subnet}}')
gateway=$(docker network inspect "${project}_edge" -f '{{(index .IPAM.Config 0).Gateway}}')
NGINX_RATE_ALLOWLIST="$backend $gateway/32" "${compose[@]}" up --detach --wait --no-deps nginx \
  >>"$out/up.log" 2>&1

password=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)
"${compose[@]}" exec -T wsgi python manage.py ensure_user bench --password "$password" >/dev/null
generator() {  # a script of the load-generator image, on the backend network
  docker run --rm --network "${project}_backend" -v "$PWD/$out:/reports" \
    -e COMPARE_USER=bench -e COMPARE_PASSWORD="$password" --entrypoint python pykit-locust "$@"
}
wrk_bench() {  # name, then compare.py arguments
  local name=$1
  shift
  generator /app/compare.py --out "/reports/$name" --duration "$duration" --warmup 2 "$@"
}
machine="$(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
{
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), machine: $machine, Docker $(docker version -f '{{.Server.Version}}')"
  echo "- load average before the steps: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- command: \`make bench\` (\`loadtest/bench.sh ${*:-}\`), BENCH_DURATION=$duration s per point"
} | tee "$out/machine.md"

for step in ${@:-$steps}; do
  log "$step (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  case $step in
    tls)
      wrk_bench tls-keepalive --concurrency 50 --title "nginx /healthz, keep-alive" \
        --target "keep-alive: HTTP=http://nginx:8081/healthz" \
        --target "keep-alive: HTTPS=https://nginx:8443/healthz"
      wrk_bench tls-new-connection --concurrency 50 \
        --title "nginx /healthz, a new connection (TLS handshake) per request" \
        --header "Connection: close" \
        --target "new connection: HTTP=http://nginx:8081/healthz" \
        --target "new connection: HTTPS=https://nginx:8443/healthz"
      ;;
    overhead)
      wrk_bench nginx-overhead --concurrency 50 --title "Django /api/healthz: direct vs through nginx" \
        --target "Django /api/healthz: straight at Gunicorn (HTTP)=http://wsgi:8000/api/healthz" \
        --target "Django /api/healthz: through nginx (HTTPS, keep-alive)=https://nginx:8443/api/healthz"
      ;;
    static)
      # Static names are hashed (and only the hashed copies are kept): take the admin stylesheet's.
      static_file=$("${compose[@]}" exec -T nginx sh -c 'ls /srv/static/admin/css/base.*.css | head -n 1' |
        sed 's|^/srv||')
      wrk_bench static --concurrency 50 --title "$static_file" --header "Accept-Encoding: gzip" \
        --target "static file: nginx (HTTPS)=https://nginx:8443$static_file" \
        --target "static file: Django + WhiteNoise under Gunicorn (HTTP)=http://wsgi:8000$static_file"
      ;;
    # example-begin
    cards)
      wrk_bench card-list --login http://wsgi:8000 --cards 50 --concurrency 8,32 \
        --title "Django card list (50 cards), one page, logged in" \
        --target "card list: straight at Gunicorn (HTTP)=http://wsgi:8000/api/boards/{board}/cards/" \
        --target "card list: through nginx (HTTPS, keep-alive)=https://nginx:8443/api/boards/{board}/cards/"
      ;;
    # example-end
    stream)
      # 8 = every Gunicorn thread (2 workers x 4); more clients than that wait for a thread.
      generator /app/stream_bench.py --out /reports/stream --clients 8,32,200 --deadline 30 \
        --target "Gunicorn + Django, 2 workers x 4 threads=/api/stream-demo" \
        --target "Uvicorn + FastAPI, 2 workers=/rt/stream-demo"
      ;;
    peers)
      stats() {
        local peer names=()
        for peer in "${peers[@]}"; do names+=("$project-$peer-1"); done
        docker stats --no-stream --format '{{.Name}} {{.MemUsage}}' "${names[@]}" | sed "s/^$project-//; s/-1 / /"
      }
      targets=() data=()
      data=(--cards 50)  # example
      for server in "kit-gunicorn=kit: Gunicorn gthread, kit config (5 x 4 threads)" \
        "peer-gunicorn-sync=cookiecutter-django: Gunicorn sync, WEB_CONCURRENCY 4" \
        "peer-gunicorn-uvicorn-worker=cookiecutter-django async: Gunicorn + UvicornWorker x 4"; do
        host=${server%%=*} name=${server#*=}
        targets+=(--target "card list (GET, 50 cards): $name=http://$host:8000/api/boards/{board}/cards/")  # example
        targets+=(--target "card create (POST): $name=POST http://$host:8000/api/boards/{board}/cards/")  # example
        targets+=(--target "Django io-wait 100 ms: $name=http://$host:8000/api/io-wait?ms=100")
      done
      targets+=(--target "FastAPI io-wait 100 ms: kit: Uvicorn, 1 process per container=http://kit-uvicorn:8001/rt/io-wait?ms=100")
      targets+=(--target "FastAPI io-wait 100 ms: full-stack-fastapi-template: fastapi run --workers 4=http://peer-fastapi-run:8000/rt/io-wait?ms=100")
      wrk_bench peers --login http://wsgi:8000 "${data[@]}" --concurrency 32 \
        --body '{"title": "bench card", "description": "written by the peers bench"}' \
        --title "The kit vs its peers' commands, same app" "${targets[@]}"
      { echo; echo "| container | memory after the run |"; echo "|---|---:|"
        stats | awk '{print "| " $1 " | " $2 " |"}'; } | tee -a "$out/peers/compare.md"
      ;;
    # example-begin
    fanout)
      stats() { docker stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.CPUPerc}}' \
        "$project-asgi-1" "$project-nginx-1"; }
      stats | sed 's/^/before /' | tee "$out/fanout-memory.txt"
      LOCUST_RUN_TIME=60s ./loadtest/run.sh fanout >"$out/fanout.log" 2>&1 &
      run=$!
      sleep 45  # all 1,001 users spawned (50/s) and holding
      stats | sed 's/^/held /' | tee -a "$out/fanout-memory.txt"
      status=0
      wait "$run" || status=$?
      grep -A12 "^SLO gate" "$out/fanout.log" | tee -a "$out/fanout-memory.txt" || true
      echo "fanout: locust exit $status; report in $(grep -o 'loadtest/reports/[0-9TZ]*' "$out/fanout.log" | tail -1)"
      ;;
    ws)
      # Each process within the containers' open-files limit (16,384): a WebSocket holds two
      # descriptors in an nginx worker (client, upstream), one in an asgi process. So 4 nginx
      # workers and 2 Uvicorn processes, and memory limits sized for the connections.
      NGINX_RATE_ALLOWLIST="$backend $gateway/32" NGINX_WORKER_PROCESSES=4 NGINX_MEMORY=2g \
        ASGI_MEMORY=2g "${compose[@]}" up --detach --wait --no-deps nginx asgi >>"$out/up.log" 2>&1
      stats() { docker stats --no-stream --format '{{.Name}} {{.MemUsage}} {{.CPUPerc}}' \
        "$project-asgi-1" "$project-nginx-1" | sed "s/^$project-//; s/-1 / /"; }
      per_process() {  # open descriptors of each nginx worker and each Uvicorn process
        for c in nginx asgi; do
          docker exec "$project-$c-1" sh -c 'for s in /proc/[0-9]*/status; do p=${s#/proc/}; p=${p%/status}
            n=$(ls "/proc/$p/fd" 2>/dev/null | wc -l); [ "$n" -le 100 ] || echo "$p:$n"; done' |
            tr '\n' ' ' | sed "s/^/$c processes (pid:fds): /"
          echo
        done
      }
      stats | sed 's/^/before /' | tee "$out/ws-memory.txt"
      # CPU seconds used so far by each container (cgroup), with the time read: "t asgi nginx".
      cpu() {
        printf '%s' "$(date +%s.%N)"
        for c in asgi nginx; do
          # cgroup v2, else v1 (Docker 20.10 here)
          docker exec "$project-$c-1" sh -c 'if [ -f /sys/fs/cgroup/cpu.stat ]; then
              awk "/^usage_usec/ { printf \" %f\", \$2 / 1e6 }" /sys/fs/cgroup/cpu.stat
            else awk "{ printf \" %f\", \$1 / 1e9 }" /sys/fs/cgroup/cpuacct/cpuacct.usage; fi'
        done
        echo
      }
      until_file() { while kill -0 "$run" 2>/dev/null && [ ! -f "$1" ]; do sleep 0.2; done; }
      rm -rf "$out/ws-ready" "$out/ws-phase" && mkdir -m 0777 "$out/ws-phase"
      docker run --rm --network "${project}_backend" -v "$PWD/$out:/reports" --ulimit nofile=16384:16384 \
        -e COMPARE_USER=bench -e COMPARE_PASSWORD="$password" --entrypoint python pykit-locust \
        /app/ws_bench.py --out /reports/ws --ready-file /reports/ws-ready --phase-dir /reports/ws-phase \
        ${BENCH_WS_CONNECTIONS:+--connections "$BENCH_WS_CONNECTIONS"} \
        ${BENCH_WS_PROCS:+--procs "$BENCH_WS_PROCS"} ${BENCH_WS_HOLD:+--hold "$BENCH_WS_HOLD"} \
        ${BENCH_WS_INTERVAL:+--interval "$BENCH_WS_INTERVAL"} >"$out/ws.log" 2>&1 &
      run=$!
      until_file "$out/ws-ready"
      sleep 5
      stats | sed 's/^/held /' | tee -a "$out/ws-memory.txt"
      rm -f "$out/ws-cpu.txt"
      # The servers' CPU at the first event, after the last delivery, and 10 s later with the
      # connections held idle (the rate to take away: server pings, timers).
      for mark in events-start events-done idle-done; do
        until_file "$out/ws-phase/$mark" && cpu >>"$out/ws-cpu.txt"
      done
      # Held now (connections that subscribed may have been dropped since): nginx's client
      # connections, less the one asking.
      held=$(docker exec "$project-nginx-1" curl -s http://127.0.0.1:8081/stub_status |
        awk '/^Active connections/ { print $3 - 1 }')
      echo "connections held now: $held WebSockets (nginx's active client connections)" | tee -a "$out/ws-memory.txt"
      per_process | tee -a "$out/ws-memory.txt"
      status=0
      wait "$run" || status=$?
      cat "$out/ws.log"
      # Why connections ended: the asgi and nginx log lines of the run, counted by message.
      for c in asgi nginx; do
        docker logs --since 10m "$project-$c-1" 2>&1 | grep -v '"logger":"nginx.access"' |
          sed -n 's/.*"msg": *"\([^"]\{0,80\}\).*/\1/p' | sort | uniq -c | sort -rn | head -n 15 |
          sed "s/^/$c log: /" | tee -a "$out/ws-memory.txt"
      done
      # Memory per held connection: (held - before) / connected, per container.
      awk -v n="${held:-0}" '
        function kib(v) { if (v ~ /GiB/) return v * 1048576; if (v ~ /MiB/) return v * 1024; return v + 0 }
        $1 == "before" { before[$2] = kib($3) } $1 == "held" { held[$2] = kib($3) }
        END { if (n > 0) for (c in held) printf "%s: %.1f KiB per connection (%d held)\n", c, (held[c] - before[c]) / n, n }
      ' "$out/ws-memory.txt" | tee -a "$out/ws-memory.txt"
      # Where the fan-out's CPU goes: each side's CPU from the first event to the last delivery
      # (less what the same connections cost held idle for as long), per delivery.
      python3 - "$out/ws-cpu.txt" "$out/ws/result.json" "$(nproc)" <<'PY' | tee -a "$out/ws-memory.txt" || true
import json, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
result = json.load(open(sys.argv[2]))
(t0, *start), (t1, *done), (t2, *idle) = rows
n = result["delivered"]
cost = {
    name: (b - a - (i - b) / (t2 - t1) * (t1 - t0)) * 1e6 / n
    for name, a, b, i in zip(("asgi", "nginx"), start, done, idle)
}
cost["generator"] = result["generator_events_cpu_s"] * 1e6 / n
# Below zero, the idle rate taken away (server pings, timers) swung more than the events cost:
# said as such, and counted as nothing.
noise = [k for k, v in cost.items() if v < 0]
cost.update(dict.fromkeys(noise, 0.0))
total = sum(cost.values())
cores = int(sys.argv[3])
print(
    "CPU per delivery, first event to last delivery: "
    + ", ".join(f"{k} {'~0 (within the idle noise)' if k in noise else f'{v:.0f} us'}"
                for k, v in cost.items())
    + f"; {total:.0f} us in all: one event to {result['connected']:,} subscribers needs at least "
    f"{total * result['connected'] / cores / 1e3:.0f} ms of this machine's {cores} cores"
)
PY
      echo "ws: exit $status"
      ;;
    # example-end
  esac
done
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - start)) s in all" | tee -a "$out/machine.md"

# One summary: the machine, every table, the fan-out gates and memory.
{
  cat "$out/machine.md"
  echo
  cat "$out"/*/compare.md
  if [ -f "$out/fanout-memory.txt" ]; then printf '\n```\n'; cat "$out/fanout-memory.txt"; printf '```\n'; fi
  if [ -f "$out/ws-memory.txt" ]; then printf '\n```\n'; cat "$out/ws-memory.txt"; printf '```\n'; fi
} >"$out/summary.md"
cat "$out/summary.md"
doc=${BENCH_DOC-docs/benchmarks.md}
if [ -n "$doc" ] && grep -q '^<!-- bench-begin -->' "$doc"; then
  awk -v summary="$out/summary.md" '
    /^<!-- bench-end -->/ { while ((getline line < summary) > 0) print line; skip = 0 }
    !skip { print }
    /^<!-- bench-begin -->/ { skip = 1 }' "$doc" >"$doc.new" && mv "$doc.new" "$doc"
  echo "bench: $doc updated (its part between bench-begin and bench-end)"
fi
echo "bench: results in $out (summary.md)"
