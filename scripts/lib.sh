# Shared by deploy.sh and backup.sh: the compose command, the project, its containers.
# shellcheck shell=bash
read -ra compose <<<"${COMPOSE:-docker compose}"
project=$("${compose[@]}" config | sed -n 's/^name: //p' | head -n 1)
start=$SECONDS
me=$(basename "$0" .sh)

say() { printf '%s: %s (%ss)\n' "$me" "$*" "$((SECONDS - start))"; }
die() { printf '%s: %s\n' "$me" "$*" >&2; exit 1; }

containers() {  # running container ids of a service (not one-off `run`s), oldest first
  docker ps --quiet --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" --filter label=com.docker.compose.oneoff=False | tac
}
running_tag() {  # the image tag the service's containers run now ("" if none)
  local id
  id=$(containers "$1" | head -n 1)
  if [ -n "$id" ]; then docker inspect --format '{{.Config.Image}}' "$id" | sed 's/.*://'; fi
}
