#!/usr/bin/env bash
# `make loadtest PROFILE=smoke|load|stress|soak`: run a Locust profile headless against the
# running stack, through nginx over HTTPS, and write loadtest/reports/<timestamp>/
# (HTML report, CSVs, SLO gate results). Exits non-zero when an SLO gate (slo.toml) fails.
#
# Environment:
#   KIT_HTTPS_URL          target (default https://127.0.0.1:${HTTPS_PORT:-443})
#   COMPOSE_PROJECT_NAME   the stack whose `wsgi` service creates the test accounts
#   KIT_LOADTEST_PASSWORD  use existing accounts with this password instead of creating them
#   KIT_LOADTEST_USERS     comma-separated account names (default `loadtest`; all of an account's users share one real-time topic)
#   KIT_LOADTEST_JUNIT     also copy the gates as JUnit XML to this path (for make test's summary)
#   LOCUST_*               any Locust option, e.g. LOCUST_USERS=50 LOCUST_RUN_TIME=2m
set -o errexit -o pipefail -o nounset

cd "$(dirname "$0")/.."

profile=${1:-smoke}
shift || true  # anything after the profile goes to Locust as it is
conf=loadtest/profiles/$profile.conf
if [ ! -f "$conf" ]; then
  echo "unknown profile '$profile'; choose one of: $(cd loadtest/profiles && ls ./*.conf | sed 's|./||; s|.conf||' | tr '\n' ' ')" >&2
  exit 2
fi

target=${KIT_HTTPS_URL:-https://127.0.0.1:${HTTPS_PORT:-443}}
case "$target" in
  https://127.0.0.1:* | https://localhost:* | https://127.0.0.1 | https://localhost) ;;
  *) if [ "${KIT_LOADTEST_ANY_HOST:-}" != 1 ]; then
       echo "refusing to load $target: only 127.0.0.1/localhost (set KIT_LOADTEST_ANY_HOST=1 for your own host)" >&2
       exit 2
     fi ;;
esac

# A profile may name its user classes and its own gates in comments (see profiles/fanout.conf).
classes=$(sed -n 's/^# user-classes: //p' "$conf")
if [ -n "$classes" ] && [ -z "${LOCUST_USER_CLASSES:-}" ]; then export LOCUST_USER_CLASSES=$classes; fi
slo_file=$(sed -n 's/^# slo-file: //p' "$conf")

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=loadtest/reports/$stamp
mkdir -p "$out"

echo "loadtest: building the load generator image"
docker compose -f loadtest/compose.yaml build --quiet locust

users=${KIT_LOADTEST_USERS:-loadtest}
if [ -z "${KIT_LOADTEST_PASSWORD:-}" ]; then
  # Fresh random password every run, set on the stack's own accounts: nothing fixed, nothing kept.
  KIT_LOADTEST_PASSWORD=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)
  export KIT_LOADTEST_PASSWORD
  echo "loadtest: accounts $users in project ${COMPOSE_PROJECT_NAME:-pykit}"
  pids=()
  for user in ${users//,/ }; do
    docker compose exec -T wsgi python manage.py ensure_user "$user" \
      --password "$KIT_LOADTEST_PASSWORD" >/dev/null &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
fi

echo "loadtest: profile $profile against $target, reports in $out"
# --network host: the generator reaches only what the stack publishes on this host.
# Every LOCUST_* variable of the caller is passed through (Locust reads them as options).
status=0
docker run --rm --init --name "${COMPOSE_PROJECT_NAME:-pykit}-loadtest-$stamp" \
  --network host --user "$(id -u):$(id -g)" \
  -v "$PWD/$out:/reports" \
  -e KIT_LOADTEST_USERS="$users" -e KIT_LOADTEST_PASSWORD \
  $(env | grep -o '^LOCUST_[A-Z_]*' | sed 's/^/-e /') \
  pykit-locust \
  --config "/app/profiles/$profile.conf" --host "$target" \
  --html "/reports/$profile.html" --csv "/reports/$profile" \
  --slo-report /reports/slo.json --slo-junit /reports/slo-junit.xml --slo-file "/app/${slo_file:-slo.toml}" "$@" \
  2>&1 | tee "$out/locust.log" || status=$?

if grep -q '429' "$out/${profile}_failures.csv" 2>/dev/null; then
  gateway=$(docker network inspect "${COMPOSE_PROJECT_NAME:-pykit}_edge" \
    -f '{{(index .IPAM.Config 0).Gateway}}' 2>/dev/null || echo GATEWAY)
  echo "loadtest: nginx rate-limited the generator (429): all users share one address. Start" \
    "the stack with NGINX_RATE_ALLOWLIST=$gateway/32 (loadtest/README.md)." >&2
fi
# A CI summary (scripts/test-summary.py) counts the gates when asked for a JUnit copy.
if [ -n "${KIT_LOADTEST_JUNIT:-}" ] && [ -f "$out/slo-junit.xml" ]; then
  cp "$out/slo-junit.xml" "$KIT_LOADTEST_JUNIT"
fi
echo "loadtest: exit $status; report $out/$profile.html"
exit "$status"
