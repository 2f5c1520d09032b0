#!/bin/sh
# Fill the secrets volumes. The `secrets` volume (this container only) keeps every value: one
# given by the user is written there (so it is always the one truth), a missing one is
# generated once and kept. Then each service's own volume gets only the files that service
# reads, owned by its user and readable by nobody else (docs/design.md, "Secrets").
# Runs as the one-shot `secrets` service before anything that reads them.
set -o errexit -o nounset

store=/run/kit-secrets
# User-provided values arrive as NAME=value lines in a file (a compose config), not in this
# container's environment, where `docker inspect` would show them for as long as it exists.
input=/run/kit-secret-input/env
umask 0077
chmod 0700 "$store"

given() {  # given NAME -> the value from the input file, or nothing
  [ -f "$input" ] || return 0
  sed -n "s/^$1=//p" "$input" | head -n 1
}

put() {  # put FILE [OVERRIDE-NAME]
  file="$store/$1"
  value=$( [ -z "${2:-}" ] || given "$2" )
  if [ -n "$value" ]; then
    printf '%s' "$value" >"$file.tmp"
    mv "$file.tmp" "$file"
    echo "secrets: $1 taken from $2"
  elif [ ! -s "$file" ]; then
    # 50 random alphanumerics: URL- and shell-safe, above Django's 50-character check.
    tr -dc 'A-Za-z0-9' </dev/urandom | head -c 50 >"$file.tmp"
    mv "$file.tmp" "$file"
    echo "secrets: $1 generated"
  fi
}

put django_secret_key DJANGO_SECRET_KEY
put postgres_password POSTGRES_PASSWORD
put realtime_token_key REALTIME_TOKEN_KEY
put redis_django_password
put redis_asgi_password
put redis_admin_password
put postgres_monitor_password
put redis_monitor_password

give() {  # give SERVICE UID SOURCE [TARGET]: a 0400 copy in /run/secrets-for/SERVICE
  dir=/run/secrets-for/$1
  cp "$store/$3" "$dir/${4:-$3}.tmp"
  chown "$2:$2" "$dir/${4:-$3}.tmp"
  chmod 0400 "$dir/${4:-$3}.tmp"
  mv "$dir/${4:-$3}.tmp" "$dir/${4:-$3}"
}

lock() {  # lock SERVICE UID: the directory is its user's alone
  chown "$2:$2" "/run/secrets-for/$1"
  chmod 0500 "/run/secrets-for/$1"
}

# The official images' users: apps 10001 (wsgi_app/asgi_app Dockerfiles), postgres and redis 999.
give wsgi 10001 django_secret_key
give wsgi 10001 postgres_password
give wsgi 10001 realtime_token_key
give wsgi 10001 redis_django_password redis_password
give wsgi 10001 postgres_monitor_password  # `migrate` sets the exporter's role password
lock wsgi 10001
give asgi 10001 realtime_token_key
give asgi 10001 redis_asgi_password redis_password
lock asgi 10001
give postgres 999 postgres_password
lock postgres 999
# The exporters (monitoring profile) run as nobody.
give monitoring 65534 postgres_monitor_password
# redis_exporter's password file: a JSON map from the address it scrapes, with its user, to
# the password (compose.yaml: REDIS_ADDR, REDIS_USER). Alphanumeric: no JSON escaping needed.
exporter_passwords=/run/secrets-for/monitoring/redis_exporter_passwords.json
printf '{"redis://monitor@redis:6379": "%s"}\n' "$(cat "$store/redis_monitor_password")" \
  >"$exporter_passwords.tmp"
chown 65534:65534 "$exporter_passwords.tmp"
chmod 0400 "$exporter_passwords.tmp"
mv "$exporter_passwords.tmp" "$exporter_passwords"
lock monitoring 65534

# Redis reads its users from an ACL file with SHA-256 hashes of the passwords (never the
# passwords). Nothing runs without a login (default user off). Keys by purpose
# (docs/design.md, "Redis"); Pub/Sub channels carry no data at rest, so they are not split.
hash() { printf '%s' "$(cat "$store/$1")" | sha256sum | cut -d' ' -f1; }
acl=/run/secrets-for/redis/users.acl
{
  echo "user default off resetkeys resetchannels -@all"
  # The metrics exporter: server statistics only (INFO, the latency summaries, the slow log's
  # length), no key, no channel, and not the slow log's entries (they hold commands' values).
  echo "user monitor on #$(hash redis_monitor_password) resetkeys resetchannels -@all +info +ping +latency|latest +latency|histogram +slowlog|len +client|setname"
  # Django: cache and sessions (prefix wsgi), event streams, real-time access sets, io-wait;
  # FLUSHDB is cache.clear().
  echo "user django on #$(hash redis_django_password) ~wsgi:* ~events:* ~rt:acl:* ~iowait:* allchannels +@all -@dangerous +flushdb"
  # asgi: event streams, presence, io-wait, Pub/Sub, and the access sets read-only (Django owns
  # them); FLUSHDB only for its tests' own DB.
  echo "user asgi on #$(hash redis_asgi_password) ~events:* ~presence:* ~iowait:* %R~rt:acl:* allchannels +@all -@dangerous +flushdb"
  # Operators and the healthcheck, from inside the Redis container only (its password is there).
  echo "user admin on #$(hash redis_admin_password) ~* &* +@all"
} >"$acl.tmp"
chown 999:999 "$acl.tmp"
chmod 0400 "$acl.tmp"
mv "$acl.tmp" "$acl"
give redis 999 redis_admin_password
lock redis 999
