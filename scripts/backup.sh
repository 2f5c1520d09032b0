#!/usr/bin/env bash
# `make backup`, `make backup-list`, `make restore-drill`, `make restore BACKUP=<name>`: each a
# one-off container of the `backup` service (python -m core.backup, wsgi_app/core/backup.py)
# on the image tag the stack runs now.
#
#   scripts/backup.sh now | list | drill [NAME] | restore NAME
#
# restore: refuses a missing or corrupt backup before touching anything; otherwise stops the
# writers (every wsgi container and the backup service), restores in one transaction, runs
# the release step (migrate), and starts the writers again. The site answers 502 meanwhile.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
tag=$(running_tag wsgi)
export IMAGE_TAG=${IMAGE_TAG:-${tag:-latest}}

backup() { "${compose[@]}" run --rm --no-deps -T backup python -m core.backup "$@"; }

command=${1:-}
case "$command" in
  now | list | drill) backup "$@" ;;
  restore)
    name=${2:-}
    [ -n "$name" ] || die "say which backup: make restore BACKUP=<name> (make backup-list lists them)"
    backup verify "$name" || die "refused: nothing was changed"
    writers=()
    for svc in wsgi backup; do
      [ -z "$(containers "$svc")" ] || writers+=("$svc")
    done
    say "stopping the writers (${writers[*]:-none running})"
    [ "${#writers[@]}" = 0 ] || "${compose[@]}" stop "${writers[@]}"
    restart_writers() {
      [ "${#writers[@]}" = 0 ] || "${compose[@]}" start "${writers[@]}"
      for svc in "${writers[@]}"; do
        for id in $(containers "$svc"); do
          for ((i = 0; i < 120; i++)); do
            [ "$(docker inspect --format '{{.State.Health.Status}}' "$id")" = healthy ] && break
            sleep 1
          done
        done
      done
    }
    if ! backup restore "$name"; then
      restart_writers
      die "the restore failed and was rolled back: the database is as it was"
    fi
    say "release step (migrate) on $IMAGE_TAG"
    "${compose[@]}" run --rm --no-deps -T migrate
    restart_writers
    say "restored $name"
    ;;
  *) die "usage: $0 now | list | drill [NAME] | restore NAME" ;;
esac
