#!/usr/bin/env bash
# Card list and card update through nginx with wrk; prints requests/s and p50/p95/p99.
#   bench/run.sh https://127.0.0.1:443 USER PASSWORD [CONCURRENCY] [DURATION]
# Needs wrk (apt-get install wrk). nginx's per-IP rate limits would answer 429 to a benchmark
# from one address: run the stack with NGINX_LIMIT_DRY_RUN=on for the measurement.
set -o errexit -o pipefail -o nounset

url=$1 user=$2 password=$3 concurrency=${4:-32} duration=${5:-30s}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 "$(dirname "$0")/setup.py" "$url" "$user" "$password" 50 "$work"
for script in list update; do
  printf '%-6s c=%s %s: ' "$script" "$concurrency" "$duration"
  wrk -t2 -c"$concurrency" -d"$duration" -s "$work/$script.lua" "$url" | tail -1
done
