#!/usr/bin/env bash
# `make test-swarm`: the kit on a real 3-node swarm made by swarm-lab (Docker Engine 26 nodes
# on this machine): push, deploy, then tests/swarm/swarm_checks.py through the nodes' HTTPS
# ports: every part on two nodes, a rolling update under load, a node failure under load.
# Tears the lab down at the end, also on failure.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/host-requests.sh
. scripts/host-requests.sh

[ -x "${SWARM_LAB:-}" ] || {
  echo "test-swarm: set SWARM_LAB to the swarm-lab script (it makes the 3-node swarm and stops" \
    "a node). To deploy to a swarm of your own, set DOCKER_HOST and REGISTRY" \
    "and use make swarm-deploy." >&2
  exit 2
}
start=$SECONDS
# The lab's own commands talk to this machine's engine, not to the swarm's manager.
lab() { DOCKER_HOST='' "$SWARM_LAB" "$@"; }
log() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - start))"; }

export COMPOSE_PROJECT_NAME=${SWARM_TEST_PROJECT:-pykit-swarm-test}
compose=(docker compose --env-file .env.example)
export COMPOSE="${compose[*]}" SWARM_RESOLVE_IMAGE=never
export REGISTRY=127.0.0.1:5000 IMAGE_TAG=t1
# The test checks no backup: without the service, its image (the largest) is neither pushed
# nor pulled.
export SWARM_BACKUP=off
E2E_PASSWORD=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)
export E2E_PASSWORD
reports=build/swarm-test-reports
read -ra images <<<"$(deploy/swarm/swarm.sh services)"  # what swarm.sh push builds

# SWARM_TEST_KEEP=1 leaves the lab up to look into a failure (`swarm-lab down` removes it).
teardown() {
  [ -n "${SWARM_TEST_KEEP:-}" ] && { log "lab kept (SWARM_TEST_KEEP)"; return; }
  log "tear down"
  lab down || true
}
trap teardown EXIT

log "swarm-lab up 3"
lab up 3 >/dev/null
eval "$(lab env)"
export DOCKER_HOST
# Every test client comes from one address (the lab's NAT): no per-IP limits for it, as
# `make test` does for its load steps.
NGINX_RATE_ALLOWLIST=$(DOCKER_HOST='' docker network inspect swarm-lab -f '{{(index .IPAM.Config 0).Subnet}}')
export NGINX_RATE_ALLOWLIST
# Node 1 (the manager) holds the data; every node is an edge. No zones: Swarm then places
# replicas on the nodes with the fewest of them, and the fewest tasks: nodes 2 and 3 each get
# a wsgi and an asgi, which the node-failure check needs.
for i in 1 2 3; do
  docker node update --label-add kit.edge=true "swarm-lab-node$i" >/dev/null
done
docker node update --label-add kit.data=true swarm-lab-node1 >/dev/null

log "build and push release t1; release t2 (a migration, new images) from tests/deploy"
deploy/swarm/swarm.sh push
DOCKER_HOST='' docker compose -f compose.yaml -f compose.test.yaml --profile tests build --quiet e2e
p=$COMPOSE_PROJECT_NAME
for target in wsgi-next asgi-next; do
  DOCKER_HOST='' DOCKER_BUILDKIT=0 docker build --quiet --target "$target" --build-arg "WSGI_IMAGE=$p-wsgi:t1" \
    --build-arg "ASGI_IMAGE=$p-asgi:t1" -t "$p-${target%%-*}:t2" tests/deploy >/dev/null
done
for image in "${images[@]}"; do
  # t2 has new wsgi and asgi images, and the same nginx, Redis and Postgres images.
  case $image in nginx | redis | postgres) DOCKER_HOST='' docker tag "$REGISTRY/$p-$image:t1" "$p-$image:t2" ;; esac
  DOCKER_HOST='' docker tag "$p-$image:t2" "$REGISTRY/$p-$image:t2"
  DOCKER_HOST='' docker push -q "$REGISTRY/$p-$image:t2" >/dev/null
done

log "secrets, deploy t1"
deploy/swarm/swarm.sh secrets
deploy/swarm/swarm.sh deploy

log "tests through the nodes' HTTPS ports"
rm -rf "$reports/ops" && mkdir -p "$reports/ops" && chmod 0777 "$reports" "$reports/ops"
urls=$(for i in 1 2 3; do printf 'https://127.0.0.1:%s ' "$((${SWARM_LAB_HTTPS_BASE:-28540} + i))"; done)
DOCKER_HOST='' docker run --rm --network host -v "$PWD/$reports:/reports" \
  -e "KIT_HTTPS_URL=${urls%% *}" -e "SWARM_NODE_URLS=$urls" -e "SWARM_STACK=$p" \
  -e "DOCKER_HOST=$DOCKER_HOST" -e "E2E_PASSWORD=$E2E_PASSWORD" "$p-e2e" \
  swarm/swarm_checks.py -p no:cacheprovider -s --junitxml=/reports/swarm.xml "$@" &
tests_pid=$!
# The `host` fixture's runner (tests/conftest.py): deploys and node stops, on this machine.
swarm_request() {
  case "$1" in
    deploy) IMAGE_TAG=$2 deploy/swarm/swarm.sh deploy ;;
    stop) lab stop "$2" ;;
    start) # A node killed by `docker stop` leaves containerd's pid file behind; when that pid
      # is taken at the next start, its Docker Engine refuses to start. Empty the file first.
      printf '' >"$reports/containerd.pid"
      tar -c -C "$reports" containerd.pid |
        DOCKER_HOST='' docker cp - "swarm-lab-node$2:/var/run/docker/containerd/" || true
      lab start "$2" ;;
    *) echo "unknown request: $1"; return 2 ;;
  esac
}
serve_requests "$reports/ops" "$tests_pid" swarm_request
status=0
wait "$tests_pid" || status=$?
log "swarm test done (exit $status)"
exit "$status"
