#!/usr/bin/env bash
# The kit on a Docker Swarm (README, "Past one host"). `docker` talks to a manager through
# DOCKER_HOST; images are built here and pushed to REGISTRY, which every node pulls from.
#
#   swarm.sh secrets   create the kit's secrets as Swarm secrets, if absent (never printed)
#   swarm.sh push      build the images once, tag them IMAGE_TAG, push them to REGISTRY
#   swarm.sh deploy    data stores, then the release step (jobs), then the apps, rolling
#   swarm.sh rm        remove the stack (volumes and secrets stay)
#   swarm.sh services  the services whose images push builds, on one line
#
# Settings: IMAGE_TAG (default: the git commit), REGISTRY, SWARM_STACK (default: the compose
# project name), WSGI_REPLICAS / ASGI_REPLICAS (2 / 2), SWARM_SECRETS_VERSION (1),
# SWARM_BACKUP (on|off: off leaves out the backup service and its image, for a database that
# is backed up elsewhere), SWARM_RESOLVE_IMAGE (always|changed|never: pin the other images to
# registry digests), BUILD_DOCKER_HOST (the engine that builds and pushes; default: this
# machine's, whatever DOCKER_HOST says).
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/../.."

read -r -a compose <<<"${COMPOSE:-docker compose}"
here=deploy/swarm
tag=${IMAGE_TAG:-$(git rev-parse --short HEAD 2>/dev/null || true)}
version=${SWARM_SECRETS_VERSION:-1}
resolve=${SWARM_RESOLVE_IMAGE:-always}
me=swarm
apps=(nginx wsgi asgi)
case ${SWARM_BACKUP:-on} in
  on) apps+=(backup) ;;
  off) ;;
  *) printf '%s: SWARM_BACKUP is on or off, not %s\n' "$me" "$SWARM_BACKUP" >&2; exit 2 ;;
esac

start=$SECONDS
say() { printf '%s: %s (%ss)\n' "$me" "$*" "$((SECONDS - start))" >&2; }
fail() { say "$*"; exit 1; }
config() { DOCKER_HOST=${BUILD_DOCKER_HOST:-} "${compose[@]}" config --format json; }
stack=${SWARM_STACK:-$(config | python3 -c 'import json, sys; print(json.load(sys.stdin)["name"])')}

need() {
  [ -n "${DOCKER_HOST:-}" ] || say "DOCKER_HOST is not set: using the local engine as the manager"
  [ "$(docker info -f '{{.Swarm.ControlAvailable}}')" = true ] \
    || fail "the engine at ${DOCKER_HOST:-the local socket} is not a swarm manager: point DOCKER_HOST at one"
  [ -n "${REGISTRY:-}" ] || fail "set REGISTRY to the registry every node pulls from (e.g. 127.0.0.1:5000)"
  [ -n "$tag" ] || fail "set IMAGE_TAG (no git commit to name the release)"
}

kit_secrets() {  # the IDs of this stack's secrets of this version
  docker secret ls -q --filter "label=kit.stack=$stack" --filter "label=kit.version=$version"
}

# Every secret as scripts/init-secrets.sh makes and hands them out (run in a throwaway
# container, values given in the environment taken as under Compose), each file of
# /run/secrets-for/<service>/ a Swarm secret labelled with its service, file and owner.
secrets() {
  need
  local have tmp services
  have=$(kit_secrets | wc -l)
  if [ "$have" -gt 0 ]; then
    [ "$have" = "$(docker secret ls -q --filter "label=kit.stack=$stack" --filter "label=kit.version=$version" --filter label=kit.complete=1 | wc -l)" ] \
      && { say "the secrets of $stack (version $version) exist: nothing to do"; return; }
    fail "the secrets of $stack version $version are incomplete (an interrupted run): remove them" \
      "(docker secret rm \$(docker secret ls -q --filter label=kit.stack=$stack)) or set SWARM_SECRETS_VERSION"
  fi
  services=$(config | python3 -c 'import json, sys
s = json.load(sys.stdin)["services"]["secrets"]["volumes"]
print(" ".join(v["target"] for v in s if v["target"].startswith("/run/secrets-for/")))')
  tmp=$(mktemp -d) && chmod 0700 "$tmp"
  trap 'rm -rf "$tmp"' RETURN
  mkdir "$tmp/in" "$tmp/out"
  cp scripts/init-secrets.sh "$tmp/in/"
  printf 'DJANGO_SECRET_KEY=%s\nPOSTGRES_PASSWORD=%s\nREALTIME_TOKEN_KEY=%s\n' "${DJANGO_SECRET_KEY:-}" \
    "${POSTGRES_PASSWORD:-}" "${REALTIME_TOKEN_KEY:-}" >"$tmp/in/env"
  # shellcheck disable=SC2016  # expanded in the container
  tar -C "$tmp/in" -c . | docker run --rm -i --network none --cap-drop ALL \
    --cap-add CHOWN --cap-add DAC_OVERRIDE --cap-add FOWNER debian:trixie-slim sh -c '
      mkdir -p /in /run/kit-secrets /run/kit-secret-input $0 && tar -x -C /in \
      && cp /in/env /run/kit-secret-input/env && sh /in/init-secrets.sh >&2 \
      && tar -c --numeric-owner -C /run/secrets-for .' "$services" >"$tmp/out.tar"
  tar -x -C "$tmp/out" -f "$tmp/out.tar"
  tar -tv --numeric-owner -f "$tmp/out.tar" | awk '$1 ~ /^-/ {split($2, o, "/"); print o[1], $NF}' |
    while read -r uid path; do
      local svc=${path#./} && svc=${svc%%/*} file=${path##*/}
      docker secret create --label "kit.stack=$stack" --label "kit.version=$version" \
        --label "kit.service=$svc" --label "kit.file=$file" --label "kit.uid=$uid" \
        --label kit.complete=1 "${stack}_${svc}_${file//./_}_v$version" "$tmp/out/$path" >/dev/null
      say "created ${stack}_${svc}_${file//./_}_v$version"
    done
}

# The services whose images the kit builds and the swarm runs: the apps, and Redis and
# Postgres with the log wrapper (log/Dockerfile); not `secrets` (Swarm secrets instead).
built_services() {
  config | python3 -c 'import json, sys
s = json.load(sys.stdin)["services"]
data = [n for n, v in s.items() if "build" in v and not v.get("profiles") and n in ("redis", "postgres")]
print(" ".join(sys.argv[1:] + data))' "${apps[@]}"
}
built_images() {  # their images (compose names), one a line
  local services
  read -ra services <<<"$(built_services)"
  config | python3 -c 'import json, sys
s = json.load(sys.stdin)["services"]
for name in sys.argv[1:]: print(s[name]["image"])' "${services[@]}" | sort -u
}

push() {
  need
  local images
  images=$(built_images)
  say "building $(echo "$images" | wc -l) images"
  local services
  read -ra services <<<"$(built_services)"
  DOCKER_HOST=${BUILD_DOCKER_HOST:-} "${compose[@]}" build --quiet "${services[@]}"
  for image in $images; do
    DOCKER_HOST=${BUILD_DOCKER_HOST:-} docker tag "$image" "$REGISTRY/${image%%:*}:$tag"
    DOCKER_HOST=${BUILD_DOCKER_HOST:-} docker push -q "$REGISTRY/${image%%:*}:$tag" >/dev/null
    say "pushed $REGISTRY/${image%%:*}:$tag"
  done
}

# pin_images: "<compose image> <REGISTRY/name@digest>" lines for this release's images, looked
# up in the registry (docker manifest), into $work/images. By digest, an image that did not
# change between two releases is the same image to Swarm: its service is left running.
pin_images() {
  local image ref digest insecure=()
  case $REGISTRY in localhost[:/]* | 127.0.0.1[:/]*) insecure=(--insecure) ;; esac  # plain HTTP
  for image in $(built_images); do
    ref=$REGISTRY/${image%%:*}:$tag
    digest=$(docker manifest inspect -v "${insecure[@]}" "$ref" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["Descriptor"]["digest"])') ||
      fail "no image $ref in the registry: IMAGE_TAG=$tag make swarm-push first"
    echo "$image $REGISTRY/${image%%:*}@$digest"
  done >"$work/images"
}

generate() {  # generate PART -> the stack file's path
  local secrets=$work/secrets.json
  [ -s "$secrets" ] || { kit_secrets | xargs -r docker secret inspect >"$secrets"; }
  config | python3 "$here/stack.py" --part "$1" --stack "$stack" --images "$work/images" \
    --tag "$tag" --secrets "$secrets" --backup "${SWARM_BACKUP:-on}" --wsgi-replicas "${WSGI_REPLICAS:-2}" \
    --asgi-replicas "${ASGI_REPLICAS:-2}" >"$work/$1.json"
  echo "$work/$1.json"
}

tasks() {  # tasks SERVICE -> one "desired-state current-state" line per task
  docker service ps "${stack}_$1" --format '{{.DesiredState}} {{.CurrentState}}' 2>/dev/null || true
}

# until_done SERVICE SECONDS: a job's tasks all complete, or there is no such job (0); one
# failed, or the time is up (1).
until_done() {
  local deadline=$((SECONDS + $2)) states
  docker service inspect "${stack}_$1" >/dev/null 2>&1 || return 0
  while [ "$SECONDS" -lt "$deadline" ]; do
    states=$(tasks "$1" | awk '{print $2}')
    if grep -qE '^(Failed|Rejected|Orphaned)' <<<"$states"; then return 1; fi
    if [ -n "$states" ] && ! grep -qvE '^Complete' <<<"$states"; then return 0; fi
    sleep 2
  done
  return 1
}

# until_running SERVICE... : each has as many running tasks as it wants (healthy, if it has a
# healthcheck: Swarm reports a task running only then).
until_running() {
  # 10 min: a first deploy pulls every image on every node.
  local svc deadline=$((SECONDS + 600)) line
  for svc in "$@"; do
    while line=$(docker service ls --filter "name=${stack}_$svc" --format '{{.Name}} {{.Replicas}}' \
      | awk -v n="${stack}_$svc" '$1 == n {print $2}'); do
      [ -n "$line" ] && [ "${line%%/*}" = "${line##*/}" ] && break
      [ "$SECONDS" -lt "$deadline" ] || fail "$svc is not running ($line): docker service ps ${stack}_$svc"
      sleep 2
    done
  done
}

deploy() {
  need
  [ "$(kit_secrets | wc -l)" -gt 0 ] || fail "no secrets for $stack: run make swarm-secrets first"
  for label in kit.data kit.edge; do
    [ -n "$(docker node ls -q --filter "node.label=$label=true")" ] || fail "no node has the label $label=true:" \
      "docker node update --label-add $label=true NODE (README, Past one host)"
  done
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  pin_images
  local opts=(--resolve-image "$resolve" --with-registry-auth) file

  say "data stores (postgres, redis), networks"
  file=$(generate data)
  docker stack deploy "${opts[@]}" --detach=true -c "$file" "$stack" >/dev/null
  until_running postgres redis

  # One after the other (both write the static volume of the node migrate runs on), each
  # never beside an older release's run: wait for that to end, then replace it.
  say "release step for $tag: migrate (one task), then the static files (each edge node)"
  for job in migrate static; do
    until_done "$job" 600 || true
    docker service rm "${stack}_$job" >/dev/null 2>&1 || true
    file=$(generate "$job")
    docker stack deploy "${opts[@]}" --detach=true -c "$file" "$stack" >/dev/null
    until_done "$job" 600 || {
      docker service ps --no-trunc --format '{{.Node}} {{.CurrentState}} {{.Error}}' "${stack}_$job" >&2 || true
      docker service logs --tail 50 "${stack}_$job" >&2 || true
      fail "the release step $job of $tag failed (above); the apps were not changed"
    }
  done

  # The first deploy creates the apps: nothing to roll back to, and `--detach=false` would wait
  # out each new service's monitor window one after the other (~100 s for three). Their tasks
  # running and healthy (until_running, below) is the check then.
  local detach=false how="rolling, one replica at a time"
  docker service inspect "${stack}_wsgi" >/dev/null 2>&1 || { detach=true how="new services"; }
  say "apps: ${apps[*]} on $tag ($how)"
  file=$(generate apps)
  docker stack deploy "${opts[@]}" --detach=$detach -c "$file" "$stack" >"$work/deploy.log" 2>&1 ||
    { cat "$work/deploy.log" >&2; fail "docker stack deploy failed"; }
  # An update: `--detach=false` returns once the new tasks run; the update is settled only
  # after its monitor window (a task failing within it rolls the service back).
  local svc state failed="" deadline=$((SECONDS + 600))
  for svc in "${apps[@]}"; do
    while state=$(docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' "${stack}_$svc"); do
      case "$state" in updating | rollback_started) ;; *) break ;; esac
      [ "$SECONDS" -lt "$deadline" ] || break
      sleep 2
    done
    case "$state" in "" | completed) ;; *) failed+=" $svc ($state)" ;; esac
  done
  [ -z "$failed" ] || fail "not rolled out:$failed: docker service ps ${stack}_<service> shows why"
  until_running "${apps[@]}"
  say "deployed $tag to $stack"
}

case "${1:-}" in
  secrets) secrets ;;
  push) push ;;
  deploy) deploy ;;
  rm) docker stack rm "$stack" && say "removed $stack (volumes and secrets stay)" ;;
  services) built_services ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
