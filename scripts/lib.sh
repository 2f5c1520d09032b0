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
name_of() { docker inspect --format '{{.Name}}' "$1" | tr -d /; }
backend_ip() {  # the container's address on the network nginx reaches the apps through
  docker inspect --format "{{with index .NetworkSettings.Networks \"${project}_backend\"}}{{.IPAddress}}{{end}}" "$1"
}

# ---- taking a container out of nginx's rotation before it stops --------------------------
# nginx reaches the apps by their DNS name (nginx/templates/upstreams.conf). A container that
# stops is still in nginx's DNS answer for up to NGINX_DNS_VALID, and an idle keepalive
# connection to it may be reused just as it closes: a POST sent then is lost (nginx never
# retries one). So before a container stops, nginx is reloaded with the addresses of the ones
# that stay (kit-upstreams in the nginx image): new nginx workers never use the leaving one;
# the old workers finish their requests and close their idle connections to it.
pinned=()
pin_others() {  # pin_others SERVICE ID: nginx sends SERVICE's requests to every container but ID
  local svc=$1 leaving=$2 id ips=() drain=()
  # Leaving: wait until nginx's old workers can no longer send to it (kit-reload --drain).
  [ -z "$leaving" ] || drain=(--drain)
  [ -n "${nginx_id:-}" ] || return 0
  for id in $(containers "$svc"); do
    [ "$id" = "$leaving" ] || ips+=("$(backend_ip "$id")")
  done
  [ "${#ips[@]}" -gt 0 ] || die "no other $svc container to send requests to: $(name_of "$leaving") keeps serving"
  docker exec "$nginx_id" kit-upstreams "${drain[@]}" "$svc" "${ips[@]}" >/dev/null ||
    die "nginx refused the new $svc server list (${ips[*]}): $(name_of "$leaving") keeps serving"
  [[ " ${pinned[*]} " == *" $svc "* ]] || pinned+=("$svc")
}
unpin() {  # unpin SERVICE: nginx follows every replica through DNS again
  [[ " ${pinned[*]} " == *" $1 "* ]] || return 0
  docker exec "$nginx_id" kit-upstreams "$1" >/dev/null || die "nginx could not go back to DNS for $1"
  pinned=("${pinned[@]/$1/}")
}
nginx_connections() {  # nginx_connections ID: open TCP connections from nginx to the container
  local hex
  hex=$(backend_ip "$nginx_id" | awk -F. '{printf "%02X%02X%02X%02X", $4, $3, $2, $1}')
  docker exec "$1" cat /proc/net/tcp 2>/dev/null |
    awk -v peer="$hex" '$4 == "01" && substr($3, 1, 8) == peer' | wc -l
}
retire() {  # retire SERVICE ID: out of nginx's rotation, drained, stopped gracefully, removed
  local svc=$1 id=$2 waited=0 what
  pin_others "$svc" "$id"
  # wsgi: wait for the requests nginx's old workers still have in flight there. asgi holds
  # WebSockets and SSE streams open: stopping it is what moves them (1012, end of stream).
  if [ "$svc" = wsgi ] && [ -n "${nginx_id:-}" ]; then
    while [ "$(nginx_connections "$id")" -gt 0 ] && ((waited < 300)); do
      sleep 0.1
      waited=$((waited + 1))
    done
    what="its last requests done after $((waited / 10)) s"
  else
    what="WebSockets close with 1012, SSE streams end"
  fi
  say "$svc: $(name_of "$id") out of nginx's rotation, $what; stopping it"
  docker stop "$id" >/dev/null  # SIGTERM, SIGKILL after the service's stop_grace_period
  docker rm "$id" >/dev/null
}
