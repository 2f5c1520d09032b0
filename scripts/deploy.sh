#!/usr/bin/env bash
# `make deploy` / `make rollback`: a new release with plain Compose and no failed request.
#
#   scripts/deploy.sh            build images tagged IMAGE_TAG (default: the git commit), then deploy
#   scripts/deploy.sh rollback   deploy the previous release's images again (nothing is built)
#   scripts/deploy.sh scale wsgi=N [asgi=M]   change the replica count; the ones removed are
#                                taken out of nginx's rotation and drained first, like a deploy's
#
# Order: (1) images, (2) the release step (`migrate`: migrations + static files) while the old
# containers serve, so old code meets the new schema (expand/contract, README "Operating it"),
# (3) every wsgi, then every asgi container replaced one at a time: a new one starts beside the
# old and becomes healthy; nginx is reloaded with the addresses of every container but the old
# one (lib.sh, `retire`), the old one's requests finish, then it stops gracefully (Uvicorn
# closes WebSockets with 1012 and ends SSE streams, clients resume elsewhere); at the end nginx
# follows the service names through DNS again, and a changed nginx configuration is made
# live in the running nginx by a reload (kit-config). A new container that is not healthy
# within its healthcheck budget is removed, its logs kept, and the deploy stops with the old
# containers still serving. Current and previous tags live in .deploy/<project>.env.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
state_dir=.deploy
state=$state_dir/$project.env
nginx_id=$(containers nginx | head -n 1)
trap 'unpin wsgi; unpin asgi' EXIT

if [ "${1:-}" = scale ]; then
  shift
  [ "$#" -gt 0 ] || die "usage: $0 scale wsgi=N [asgi=M]"
  for arg in "$@"; do
    svc=${arg%%=*} n=${arg#*=}
    case "$svc=$n" in (wsgi=[1-9]*|asgi=[1-9]*) ;; (*) die "scale wsgi=N or asgi=N (N >= 1), not '$arg'" ;; esac
    [[ "$n" =~ ^[0-9]+$ ]] || die "scale: '$n' is not a number"
    mapfile -t running < <(containers "$svc")
    [ "${#running[@]}" -gt 0 ] || die "no running $svc container in project $project: start the stack first (make up)"
    if [ "$n" -gt "${#running[@]}" ]; then
      # New replicas join once healthy, when nginx next resolves the name (NGINX_DNS_VALID).
      "${compose[@]}" up --detach --wait --no-deps --no-recreate --scale "$svc=$n" "$svc"
    fi
    for id in "${running[@]:$n}"; do  # the newest go
      retire "$svc" "$id"
    done
    unpin "$svc"
    say "$svc: $(containers "$svc" | wc -l) running"
  done
  exit 0
fi

seconds() { echo $(($1 / 1000000000)); }  # Docker reports durations in nanoseconds

# ---- which release ----------------------------------------------------------------------
mkdir -p "$state_dir"
current=$(running_tag wsgi || true)
previous=""
[ -f "$state" ] && previous=$(sed -n 's/^PREVIOUS=//p' "$state")
if [ "${1:-}" = rollback ]; then
  [ -n "$previous" ] || die "no previous release recorded in $state: nothing to roll back to"
  tag=$previous
elif [ -n "${IMAGE_TAG:-}" ]; then
  tag=$IMAGE_TAG
else
  tag=$(git rev-parse --short=12 HEAD 2>/dev/null) || die "not a git checkout: name the release, IMAGE_TAG=<tag> make deploy"
  # Uncommitted changes are not that commit: give them their own tag.
  git diff --quiet HEAD -- || tag="$tag-dirty-$(date -u +%Y%m%d%H%M%S)"
fi
[ -n "$current" ] || die "no running wsgi container in project $project: start the stack first (make up)"
[ "$tag" != "$current" ] || die "$project already runs $tag; set IMAGE_TAG to deploy another tag"
export IMAGE_TAG=$tag

# The release being replaced must stay reachable by tag: a stack started with plain
# `docker compose up` runs `latest`, which the next build would overwrite.
if [ "$current" = latest ]; then
  current=before-$tag
  for svc in wsgi asgi backup nginx; do
    id=$(containers "$svc" | head -n 1)
    [ -z "$id" ] || docker tag "$(docker inspect --format '{{.Image}}' "$id")" "$project-$svc:$current"
  done
fi
say "$project: $current -> $tag"

# ---- images -----------------------------------------------------------------------------
missing=()
for svc in wsgi asgi backup nginx; do
  docker image inspect "$project-$svc:$tag" >/dev/null 2>&1 || missing+=("$svc")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "${1:-}" != rollback ] || die "the images of $tag are gone (${missing[*]}): deploy that commit with IMAGE_TAG=$tag instead"
  say "building ${missing[*]} as $tag"
  "${compose[@]}" build "${missing[@]}"
fi

# ---- release step: migrations and static files, before any new app container ------------
say "release step (migrate) on $tag"
"${compose[@]}" run --rm --no-deps -T migrate || die "the release step failed: nothing was replaced, $current still serves"

# ---- replace containers one at a time ---------------------------------------------------
wait_healthy() {  # wait_healthy ID SERVICE: within the healthcheck's budget, or fail the deploy
  local id=$1 svc=$2 hc budget status name log waited
  hc=$(docker inspect --format '{{with .Config.Healthcheck}}{{printf "%d %d %d" .StartPeriod .Interval .Retries}}{{end}}' "$id")
  [ -n "$hc" ] || die "$svc has no healthcheck: a deploy cannot tell when its new container is ready"
  read -r sp iv rt <<<"$hc"
  # Docker calls a container unhealthy after start_period + retries x interval; one more
  # interval of slack for a check that is running when that time is up.
  budget=$(($(seconds "$sp") + ($(seconds "$iv") * (rt + 1))))
  name=$(docker inspect --format '{{.Name}}' "$id" | tr -d /)
  # Docker runs the check every interval; the deploy runs the same check every second, so a
  # container ready early takes traffic early. ["CMD", args...] or ["CMD-SHELL", "command"].
  local probe=()
  mapfile -d '' probe < <(docker inspect --format '{{range .Config.Healthcheck.Test}}{{.}}{{"\x00"}}{{end}}' "$id")
  case "${probe[0]:-}" in
    CMD) probe=("${probe[@]:1}") ;;
    CMD-SHELL) probe=(sh -c "${probe[1]}") ;;
    *) probe=() ;;
  esac
  local began=$SECONDS
  while ((SECONDS - began < budget)); do
    status=$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}{{if .RestartCount}} (restarted {{.RestartCount}}x){{end}}' "$id")
    case "$status" in
      "running healthy") return 0 ;;
      "running starting")  # a container that exited and was restarted fails at once
        if [ "${#probe[@]}" -gt 0 ] && docker exec "$id" "${probe[@]}" >/dev/null 2>&1; then return 0; fi
        sleep 1 ;;
      *) break ;;
    esac
  done
  waited=$((SECONDS - began))
  log=$state_dir/logs/$name-$tag.log
  mkdir -p "$state_dir/logs"
  docker logs --timestamps "$id" >"$log" 2>&1 || true
  docker rm --force "$id" >/dev/null
  die "the new $svc container ($name, image $project-$svc:$tag) was not healthy after ${waited}s (state: $status; budget ${budget}s): removed it; the old $svc containers still serve $current. Its logs: $log (deploy stopped, exit 1)"
}

replace() {  # replace SERVICE: each running container, one at a time
  local svc=$1 old id new n out before
  mapfile -t old < <(containers "$svc")
  n=${#old[@]}
  # The running ones only: a new container gets requests once it is healthy, not when it
  # appears in DNS (a broken one never does).
  pin_others "$svc" ""
  for id in "${old[@]}"; do
    before=$(containers "$svc" | sort)
    out=$("${compose[@]}" up --detach --no-deps --no-recreate --scale "$svc=$((n + 1))" "$svc" 2>&1) ||
      die "compose could not start a new $svc container ($current still serves): $out"
    new=$(comm -13 <(echo "$before") <(containers "$svc" | sort) | head -n 1)
    [ -n "$new" ] || die "compose started no new $svc container"
    wait_healthy "$new" "$svc"
    say "$svc: $(name_of "$new") healthy"
    retire "$svc" "$id"
  done
}
replace wsgi
unpin wsgi
replace asgi
unpin asgi
# nginx keeps its container (a restart would drop every connection): the new release's
# configuration, if it differs, is made live in it with a graceful reload (kit-config).
nginx_release() {
  local image=$project-nginx:$tag now new out
  # What a reload cannot change: the binary and the start-up scripts.
  local itself='nginx -v 2>&1; cat /docker-entrypoint.d/* | sha256sum'
  [ -n "$nginx_id" ] || return 0
  now=$(docker exec "$nginx_id" kit-config digest) || die "nginx: cannot read its configuration (an image from before kit-config?)"
  new=$(docker run --rm --network none --entrypoint sh "$image" -c "kit-config digest; $itself")
  if [ "$now" = "$(head -n 1 <<<"$new")" ]; then
    say "nginx: configuration unchanged"
  else
    out=$(docker run --rm --network none --entrypoint kit-config "$image" export |
      docker exec -i "$nginx_id" kit-config apply "$tag" 2>&1) ||
      die "nginx kept its configuration (the apps run $tag): $out"
    say "nginx: $out"
  fi
  if [ "$(docker exec "$nginx_id" sh -c "$itself")" != "$(tail -n +2 <<<"$new")" ]; then
    say "nginx: the new image also changes nginx itself or its start-up; it runs once nginx is recreated (IMAGE_TAG=$tag docker compose up -d nginx: a restart, open connections drop)"
  fi
}
nginx_release

# The backup service has no clients: recreate it on the new image (its Django runs the drill).
if [ -n "$(containers backup)" ]; then
  "${compose[@]}" up --detach --no-deps backup 2>/dev/null
fi

printf 'CURRENT=%s\nPREVIOUS=%s\n' "$tag" "$current" >"$state"
say "done: $project runs $tag (previous: $current, \`make rollback\` returns to it)"
