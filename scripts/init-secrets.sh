#!/bin/sh
# Fill the secrets volume: a secret given in the environment is written (so the file is
# always the one truth); a missing one is generated once and kept across restarts.
# Runs as the one-shot `secrets` service before anything that reads them.
set -o errexit -o nounset

dir=/run/kit-secrets
umask 0022

put() {  # put NAME VALUE-FROM-ENV
  file="$dir/$1"
  if [ -n "$2" ]; then
    printf '%s' "$2" > "$file.tmp"
    mv "$file.tmp" "$file"
    echo "secrets: $1 taken from the environment"
  elif [ ! -s "$file" ]; then
    # 50 random alphanumerics: URL- and shell-safe, above Django's 50-character check.
    tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 50 > "$file.tmp"
    mv "$file.tmp" "$file"
    echo "secrets: $1 generated"
  fi
  # Readable by the services' own users (postgres 999, app 10001); the volume is the boundary.
  chmod 0444 "$file"
}

put django_secret_key "${DJANGO_SECRET_KEY:-}"
put postgres_password "${POSTGRES_PASSWORD:-}"
put realtime_token_key "${REALTIME_TOKEN_KEY:-}"
