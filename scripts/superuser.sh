#!/usr/bin/env bash
# `make superuser`: a Django admin user in the running stack. Interactive at a terminal;
# without one (CI, provisioning) from DJANGO_SUPERUSER_USERNAME/_PASSWORD/_EMAIL.
# `docker compose exec` passes none of the caller's environment and gives createsuperuser
# no TTY when stdin is not one, where Django's interactive mode only prints "skipped":
# so the variables are passed explicitly and --noinput is used.
set -o errexit -o pipefail -o nounset
read -r -a compose <<<"${COMPOSE:-docker compose}"

if [ -n "${DJANGO_SUPERUSER_USERNAME:-}" ] || [ -n "${DJANGO_SUPERUSER_PASSWORD:-}" ]; then
  for var in DJANGO_SUPERUSER_USERNAME DJANGO_SUPERUSER_PASSWORD; do
    if [ -z "${!var:-}" ]; then
      echo "superuser: $var is empty: set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD (DJANGO_SUPERUSER_EMAIL optional)" >&2
      exit 2
    fi
  done
  export DJANGO_SUPERUSER_EMAIL=${DJANGO_SUPERUSER_EMAIL:-}
  exec "${compose[@]}" exec -T -e DJANGO_SUPERUSER_USERNAME -e DJANGO_SUPERUSER_PASSWORD \
    -e DJANGO_SUPERUSER_EMAIL wsgi python manage.py createsuperuser --noinput
fi
if [ ! -t 0 ]; then
  echo "superuser: no terminal to ask on: set DJANGO_SUPERUSER_USERNAME, DJANGO_SUPERUSER_PASSWORD (and DJANGO_SUPERUSER_EMAIL)" >&2
  exit 2
fi
exec "${compose[@]}" exec wsgi python manage.py createsuperuser
