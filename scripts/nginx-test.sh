#!/usr/bin/env bash
# `nginx -t` on the real image with the real entrypoint (templates rendered, certificate
# made), without the rest of the stack: the upstream names resolve to loopback here.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."
docker compose build nginx >/dev/null
image="${COMPOSE_PROJECT_NAME:-pykit}-nginx"
echo "lint: nginx -t ($image)"
docker run --rm --add-host wsgi:127.0.0.1 --add-host asgi:127.0.0.1 \
  -e NGINX_ENTRYPOINT_QUIET_LOGS=1 "$image" nginx -t
