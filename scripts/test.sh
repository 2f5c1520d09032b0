#!/usr/bin/env bash
# `make test`: build, start a separate test stack, run every suite, tear it all down,
# and end with one summary line counting every test. A user's own stack (another
# compose project, other ports) is left alone.
set -o errexit -o pipefail -o nounset

cd "$(dirname "$0")/.."

export COMPOSE_PROJECT_NAME=${TEST_PROJECT:-pykit-test}
export HTTP_PORT=${TEST_HTTP_PORT:-18080} HTTPS_PORT=${TEST_HTTPS_PORT:-18443}
export BIND_ADDRESS=127.0.0.1
export PROMETHEUS_PORT=${TEST_PROMETHEUS_PORT:-19090}
# Replicas prove balancing and fan-out across processes; fewer workers each keep 2 cores sane.
export GUNICORN_WORKERS=2 GUNICORN_THREADS=4
E2E_PASSWORD=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)
export E2E_PASSWORD

# .env.example, not a developer's .env: the tests see the documented defaults.
compose=(docker compose --env-file .env.example -f compose.yaml -f compose.test.yaml --profile tests
  --profile monitoring)
reports=build/test-reports
start=$SECONDS

log() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - start))"; }

teardown() {
  log "tear down"
  "${compose[@]}" down --volumes --remove-orphans --timeout 20 >/dev/null 2>&1 || true
  rm -rf ".deploy/$COMPOSE_PROJECT_NAME.env" ".deploy/logs/$COMPOSE_PROJECT_NAME"-*
}
trap teardown EXIT
# shellcheck source=scripts/host-requests.sh
. scripts/host-requests.sh

# The tests marked `ops` (tests/test_backup.py, tests/test_deploy.py, ...) run the kit's own
# scripts on this machine, where Compose is: each writes a request into $reports/ops/ ("backup
# now", "deploy <tag>", "scale wsgi=1 asgi=1", "rollback"), this runs it and writes the exit
# code and output back. They change the stack, so they run last, from the 3 wsgi + 2 asgi
# replicas the stack started with; the deploys use images built from the ones under test
# (tests/deploy/).
ops_request() { # what the ops tests ask of this machine: `ops_request what arg`
  case "$1" in
    deploy) COMPOSE="${compose[*]}" IMAGE_TAG=$2 ./scripts/deploy.sh ;;
    rollback) COMPOSE="${compose[*]}" ./scripts/deploy.sh rollback ;;
    # shellcheck disable=SC2086  # "scale wsgi=1 asgi=1", "restore NAME": several words
    scale) COMPOSE="${compose[*]}" ./scripts/deploy.sh scale $2 ;;
    # shellcheck disable=SC2086
    backup) COMPOSE="${compose[*]}" ./scripts/backup.sh $2 ;;
    *) echo "unknown request: $1"; return 2 ;;
  esac
}
ops_tests() {
  local ops=$reports/ops p=$COMPOSE_PROJECT_NAME target tests_pid rc=0
  mkdir -p "$ops" && chmod 0777 "$ops"
  for target in wsgi-next wsgi-broken asgi-next nginx-next; do
    DOCKER_BUILDKIT=0 docker build --quiet --target "$target" --build-arg "WSGI_IMAGE=$p-wsgi:latest" \
      --build-arg "ASGI_IMAGE=$p-asgi:latest" --build-arg "NGINX_IMAGE=$p-nginx:latest" \
      -t "$p-${target%%-*}:deploy-${target#*-}" tests/deploy >"$ops/build.log" 2>&1 ||
      { cat "$ops/build.log"; return 1; }
  done
  for tag in deploy-next deploy-broken; do
    docker tag "$p-backup:latest" "$p-backup:$tag"
  done
  docker tag "$p-asgi:latest" "$p-asgi:deploy-broken"
  docker tag "$p-nginx:latest" "$p-nginx:deploy-broken"

  "${compose[@]}" run --rm -T e2e -m ops --junitxml=/reports/ops.xml </dev/null &
  tests_pid=$!
  serve_requests "$ops" "$tests_pid" ops_request
  wait "$tests_pid" || rc=$?
  [ ! -f "$ops/deploy-summary.txt" ] || { echo "deploys under load:"; cat "$ops/deploy-summary.txt"; }
  return "$rc"
}

rm -rf "$reports" && mkdir -p "$reports"
chmod 0777 "$reports"  # the suites run as their images' non-root users

log "build"
"${compose[@]}" build

log "start the test stack and wait until it is healthy"
if ! "${compose[@]}" up --detach --wait --wait-timeout 240 --scale wsgi=3 --scale asgi=2 \
  nginx wsgi asgi migrate redis postgres backup \
  prometheus alertmanager nginx-exporter redis-exporter postgres-exporter; then
  "${compose[@]}" ps --all
  "${compose[@]}" logs --tail 60
  echo "the test stack did not become healthy" >&2
  exit 1
fi

log "end-to-end users"
for user in alice bob carol schemathesis; do
  "${compose[@]}" exec -T wsgi python manage.py ensure_user "$user" --password "$E2E_PASSWORD"
done
"${compose[@]}" exec -T wsgi python manage.py ensure_user admin --password "$E2E_PASSWORD" --superuser

# The asgi unit tests cut their own server's Pub/Sub connection (CLIENT KILL), which the asgi
# service's Redis user may not do: a user for this run only, made by the admin inside Redis.
redis_tests_password=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32 || true)
# shellcheck disable=SC2016  # expanded inside the Redis container
"${compose[@]}" exec -T redis sh -c 'redis-cli --no-auth-warning --user admin \
  --pass "$(cat /run/kit-secrets/redis_admin_password)" ACL SETUSER kit-tests on ">$0" "~*" "&*" "+@all"' \
  "$redis_tests_password" >/dev/null

# Every suite runs even when an earlier one failed; the summary decides.
status=0
# The e2e tests marked `idle` mostly sleep (a socket left idle past a proxy timeout): they run
# beside the unit suites, which leave the stack's containers alone (the other e2e tests
# restart replicas).
"${compose[@]}" run --rm -T e2e -m idle --junitxml=/reports/e2e-idle.xml </dev/null \
  >"$reports/e2e-idle.log" 2>&1 &
idle_pid=$!
# The two unit suites are one process each, on 2 cores: side by side too.
log "wsgi-tests, and beside them asgi-tests"
"${compose[@]}" run --rm -T -e "REDIS_URL=redis://kit-tests:$redis_tests_password@redis:6379/0" \
  asgi-tests </dev/null >"$reports/asgi-tests.log" 2>&1 &
asgi_pid=$!
"${compose[@]}" run --rm -T wsgi-tests </dev/null || status=1
log "asgi-tests (ran beside wsgi-tests)"
wait "$asgi_pid" || status=1
cat "$reports/asgi-tests.log"
log "e2e marked idle (ran beside the unit suites)"
wait "$idle_pid" || status=1
cat "$reports/e2e-idle.log"
log "e2e"
"${compose[@]}" run --rm e2e || status=1

log "load test (smoke profile, SLO gates)"
# Every Locust user comes from one address (the edge network's gateway): allow-list it on the
# test stack's nginx for this step and schemathesis's, so the per-IP limits the e2e tests
# proved don't turn them into rate-limit tests.
gateway=$(docker network inspect "${COMPOSE_PROJECT_NAME}_edge" -f '{{(index .IPAM.Config 0).Gateway}}')
# nginx-exporter lives in nginx's network namespace: it is recreated with nginx.
NGINX_RATE_ALLOWLIST="$gateway/32" "${compose[@]}" up --detach --wait --no-deps nginx nginx-exporter
KIT_LOADTEST_JUNIT=$reports/loadtest.xml ./loadtest/run.sh smoke || status=1

log "schemathesis: both OpenAPI documents"
"${compose[@]}" run --rm api-schemas || status=1

log "load test gates (unit)"
docker compose -f loadtest/compose.yaml build --quiet locust-test
docker run --rm --network none -v "$PWD/$reports:/reports" pykit-locust-test \
  -p no:cacheprovider --junitxml=/reports/loadtest-unit.xml || status=1

log "operations: backup, restore, drill; deploy under load (tests marked ops)"
ops_tests || status=1

if [ "$status" != 0 ]; then
  log "logs of the stack after the failure"
  "${compose[@]}" logs --tail 40 nginx wsgi asgi postgres || true
fi

teardown
trap - EXIT

# After the test stack is gone (the generated project reuses its ports), and alone: its
# builds and the deploys' load would slow each other down past what the tests allow.
log "template: make init, startapp, make dev, copier copy/update"
./scripts/test-template.sh || status=1

log "summary"
docker run --rm --network none -v "$PWD/$reports:/reports:ro" -v "$PWD/scripts:/scripts:ro" \
  -e "TEST_WALL_SECONDS=$((SECONDS - start))" python:3.13-slim-trixie python /scripts/test-summary.py /reports wsgi asgi e2e e2e-idle loadtest loadtest-unit \
  schemathesis-api schemathesis-rt ops init template || status=1
exit "$status"
