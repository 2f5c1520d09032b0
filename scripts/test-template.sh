#!/usr/bin/env bash
# `make test-template` (and the last step of `make test`): the kit used as a template, the way a
# team would. A fresh copy of this working tree goes through `make init` and `make startapp`,
# gets a model and a view, builds, comes up on its own project and ports and answers through
# nginx; `make dev` serves edits without a rebuild; `copier copy` gives the same tree and
# `copier update` brings a later tagged version in. Writes JUnit to build/test-reports/.
set -o errexit -o pipefail -o nounset

cd "$(dirname "$0")/.."
kit=$PWD
base=${TEST_PROJECT:-pykit-test}
export HTTP_PORT=${TEST_HTTP_PORT:-18080} HTTPS_PORT=${TEST_HTTPS_PORT:-18443}
export BIND_ADDRESS=127.0.0.1
export GUNICORN_WORKERS=2 GUNICORN_THREADS=2
export COMPOSE_PROJECT_NAME=$base-tpl  # the generated project's stacks
reports=$kit/build/test-reports
tools=$base-template-tools
url=https://127.0.0.1:$HTTPS_PORT
# The words that must be gone after init, spelled in pieces so that init leaves this file alone.
old_name=py''kit
example_word=bo''ard
# The example is dropped when the kit marks it (.example-paths), as a new project would.
example=keep
[ -f .example-paths ] && example=drop

work=$(mktemp -d "${TMPDIR:-/tmp}/template-test.XXXXXX")
snapshot=$work/kit            # this working tree, copied once: every case starts from it
project=$work/acme            # make init
copied=$work/acme-copier      # copier copy
src=$work/kit-src             # the kit as a tagged git repository, for copier
mkdir -p "$reports" "$work/logs"
start=$SECONDS
log() { printf '\n== template: %s (%ss)\n' "$*" "$((SECONDS - start))"; }

cleanup() {
  log "tear down"
  # `make dev` of the dev-loop case, if that case stopped before ending it (its process group).
  if [ -f "$work/dev.pid" ]; then kill -- "-$(cat "$work/dev.pid")" 2>/dev/null || true; fi
  if [ -d "$project" ]; then
    (cd "$project" && docker compose -f compose.yaml -f compose.dev.yaml down --volumes \
      --remove-orphans --timeout 10 >/dev/null 2>&1) || true
  fi
  docker image rm "$COMPOSE_PROJECT_NAME"-{wsgi,asgi,nginx} >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- a tiny JUnit writer: each case runs in a subshell with errexit, its output in a log ---
cases=()
failures=0
timings=()
run_case() {
  local name=$1 t0 rc
  shift
  log "$name"
  t0=$(date +%s.%N)
  set +o errexit
  ( set -o errexit; "$@" ) >"$work/logs/$name.log" 2>&1
  rc=$?
  set -o errexit
  local seconds
  seconds=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
  tail -n 5 "$work/logs/$name.log"
  if [ "$rc" = 0 ]; then
    cases+=("<testcase classname=\"template\" name=\"$name\" time=\"$seconds\"/>")
  else
    failures=$((failures + 1))
    local detail
    # XML 1.0 text: no control characters (the tools' colour codes), escaped markup.
    detail=$(tail -n 40 "$work/logs/$name.log" | tr -d '\000-\010\013\014\016-\037' \
      | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g')
    cases+=("<testcase classname=\"template\" name=\"$name\" time=\"$seconds\"><failure message=\"exit $rc\">$detail</failure></testcase>")
    echo "FAILED: $name (see above)"
  fi
}
write_report() {
  {
    echo '<?xml version="1.0" encoding="utf-8"?>'
    echo "<testsuites><testsuite name=\"template\" tests=\"${#cases[@]}\" failures=\"$failures\" errors=\"0\" skipped=\"0\" time=\"$((SECONDS - start))\">"
    printf '%s\n' "${cases[@]}"
    echo "</testsuite></testsuites>"
  } >"$reports/template.xml"
}
fail() { echo "$*" >&2; exit 1; }
timed() { # timed LABEL command...: runs it and records how long it took
  local label=$1 t0
  shift
  t0=$(date +%s.%N)
  "$@"
  echo "$label $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s" | tee -a "$work/timings"
}
# status URL [curl args...]: the HTTP status nginx answers with (body in $work/body)
status() { curl -sk --max-time 10 -o "$work/body" -w '%{http_code}' "$@"; }
expect_status() {
  local want=$1 got
  shift
  got=$(status "$@")
  [ "$got" = "$want" ] || fail "$* answered $got, expected $want: $(head -c 300 "$work/body")"
  echo "ok $want $*"
}
leftovers() { # files that still name the kit or, when it was dropped, the example
  local skip=(--exclude-dir=.git --exclude='CHANGELOG*' --exclude='benchmarks*' --exclude=.copier-answers.yml)
  (
    cd "$1" || exit
    grep -rIil -e "$old_name" "${skip[@]}" . || true
    # The example's word as a whole word: its plural too, not a longer word that contains it.
    [ "$example" != drop ] || grep -rIilw -e "$example_word" -e "${example_word}s" "${skip[@]}" . || true
  ) | sort -u
}
copy_working_tree() { # the files git knows or would add, as a clone of this tree would have
  mkdir -p "$1"
  if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then # a project not yet in git
    tar --exclude=./.git --exclude=./build --exclude=./loadtest/reports --exclude=./.env \
      -cf - . | tar -xf - -C "$1"
    return
  fi
  git ls-files -z --cached --others --exclude-standard \
    | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$1"
}
copier() {
  docker run --rm --user "$(id -u):$(id -g)" -e HOME=/tmp -e GIT_AUTHOR_NAME=t \
    -e GIT_AUTHOR_EMAIL=t@example.com -e GIT_COMMITTER_NAME=t -e GIT_COMMITTER_EMAIL=t@example.com \
    -v "$work:$work" -w "$PWD" "$tools" copier "$@"
}
git_commit() { git -c user.name=t -c user.email=t@example.com commit -q "$@"; }

# --- the cases -------------------------------------------------------------------------------
init_unit_tests() {
  docker run --rm --network none --user "$(id -u):$(id -g)" -v "$kit/scripts:/scripts:ro" \
    -v "$reports:/reports" "$tools" pytest -q -p no:cacheprovider /scripts/tests \
    --junitxml=/reports/init.xml
}

make_init() {
  cp -a "$snapshot" "$project"
  cd "$project"
  if make init NAME="" 2>"$work/err"; then fail "an empty NAME was accepted"; fi
  grep -q 'make init NAME=' "$work/err" || fail "no usage message: $(cat "$work/err")"
  if make init NAME="2 fast" 2>"$work/err"; then fail "a name starting with a digit was accepted"; fi
  grep -q 'must start with a letter' "$work/err" || fail "unclear refusal: $(cat "$work/err")"
  [ ! -f .project ] || fail "a refused init left .project behind"
  timed "make init:" make init NAME="Acme Notes" EXAMPLE="$example"
  git init -q && git add -A && git_commit -m init
  # Output captured first: `grep -q` would end the pipe early (SIGPIPE under pipefail).
  out=$(make init NAME="Acme Notes" EXAMPLE="$example")
  grep -q 'nothing to do' <<<"$out" || fail "a second init did not say so: $out"
  [ -z "$(git status --porcelain)" ] || fail "a second init changed: $(git status --porcelain)"
  if make init NAME="Other Name" 2>"$work/err"; then fail "a second name was accepted"; fi
  grep -q "already initialised as 'Acme Notes'" "$work/err"
  cp -a "$project" "$work/acme-after-init"
  local left
  left=$(leftovers .)
  [ -z "$left" ] || fail "still naming the kit or the example after init: $left"
  grep -q '^name: ${COMPOSE_PROJECT_NAME:-acme-notes}$' compose.yaml
  grep -q '^# Acme Notes' README.md
  grep -q '/run/acme-notes-secrets' compose.yaml
}

startapp_with_a_model_and_a_view() {
  cd "$project"
  make startapp APP=notes
  [ "$(stat -c %u wsgi_app/notes/models.py)" = "$(id -u)" ] || fail "notes/ is not owned by $(id -u)"
  grep -q '^    "notes",$' wsgi_app/config/settings.py || fail "notes is not in INSTALLED_APPS"
  if make startapp APP=notes 2>"$work/err"; then fail "a second notes app was accepted"; fi
  grep -q 'already exists' "$work/err"
  cat >wsgi_app/notes/models.py <<'EOF'
from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)
EOF
  cat >wsgi_app/notes/admin.py <<'EOF'
from django.contrib import admin

from notes.models import Note

admin.site.register(Note)
EOF
  cat >wsgi_app/notes/views.py <<'EOF'
from django.http import HttpResponse

from notes.models import Note


def count(request):
    return HttpResponse(f"notes v1: {Note.objects.count()}", content_type="text/plain")
EOF
  printf '\nfrom notes.views import count  # noqa: E402\n\nurlpatterns += [path("notes/", count)]\n' \
    >>wsgi_app/config/urls.py
  # A FastAPI route of the project's own, edited later by the dev-loop case.
  printf '\n\n@app.get("/rt/hello")\ndef hello():\n    return {"hello": "v1"}\n' >>asgi_app/app/main.py
  make migrations
  ls wsgi_app/notes/migrations/0001_initial.py
}

project_builds_and_serves() {
  cd "$project"
  timed "build and start (make up):" timeout 900 make up
  expect_status 200 "$url/"
  expect_status 200 "$url/admin/login/"
  grep -q 'Django' "$work/body" || fail "/admin/login/ is not Django's admin"
  for path in /healthz /api/healthz /api/readyz /rt/healthz /rt/readyz; do
    expect_status 200 "$url$path"
  done
  expect_status 200 "$url/notes/"
  grep -qx 'notes v1: 0' "$work/body" || fail "/notes/ answered: $(cat "$work/body")"
  expect_status 200 "$url/rt/hello"
  expect_status 308 "http://127.0.0.1:$HTTP_PORT/"
  docker compose ps --format '{{.Service}} {{.Health}}'
}

superuser_without_a_terminal() {
  cd "$project"
  local jar=$work/cookies token
  DJANGO_SUPERUSER_USERNAME=owner DJANGO_SUPERUSER_PASSWORD=tpl-Secret-2026 \
    DJANGO_SUPERUSER_EMAIL=owner@example.com make superuser </dev/null
  if make superuser </dev/null 2>"$work/err"; then fail "no terminal, no variables: accepted"; fi
  grep -q 'DJANGO_SUPERUSER_USERNAME' "$work/err"
  # Log in to the admin as that user, as a browser would.
  expect_status 200 "$url/admin/login/" -c "$jar"
  token=$(awk '$6 == "csrftoken" { print $7 }' "$jar")
  expect_status 302 "$url/admin/login/?next=/admin/" -b "$jar" -c "$jar" -H "Referer: $url/admin/login/" \
    --data-urlencode "csrfmiddlewaretoken=$token" --data-urlencode username=owner \
    --data-urlencode password=tpl-Secret-2026 --data-urlencode next=/admin/
  expect_status 200 "$url/admin/" -b "$jar"
  grep -q 'Notes' "$work/body" || fail "the notes app is not in the admin index"
}

dev_loop_serves_edits_without_a_rebuild() {
  cd "$project"
  # `compose watch` leaves its project lock behind when stopped; a lock from an earlier run
  # whose process id is in use again would refuse this one ("cannot take exclusive lock").
  rm -f "${DOCKER_CONFIG:-$HOME/.docker}/docker-compose/$COMPOSE_PROJECT_NAME.pid"
  setsid make dev >"$work/dev.log" 2>&1 &
  dev_pid=$!
  echo "$dev_pid" >"$work/dev.pid"
  local i
  for i in $(seq 1 600); do
    grep -q 'Watch enabled' "$work/dev.log" && break
    kill -0 "$dev_pid" 2>/dev/null || fail "make dev ended: $(tail -20 "$work/dev.log")"
    sleep 1
  done
  grep -q 'Watch enabled' "$work/dev.log" || fail "make dev did not start watching"
  expect_status 404 "$url/no-such-page/"
  grep -q 'Using the URLconf' "$work/body" || fail "no DEBUG page in the dev stack"
  local before after
  before=$(docker compose ps -q wsgi asgi | xargs docker inspect -f '{{.Id}} {{.Image}}')
  sed -i 's/notes v1/notes v2/' wsgi_app/notes/views.py
  served_within "Django view edit -> served:" "$url/notes/" 'notes v2'
  sed -i 's/"v1"/"v2"/' asgi_app/app/main.py
  served_within "FastAPI route edit -> served:" "$url/rt/hello" '"v2"'
  after=$(docker compose ps -q wsgi asgi | xargs docker inspect -f '{{.Id}} {{.Image}}')
  [ "$before" = "$after" ] || fail "the edits rebuilt or recreated a container"
  kill -INT -- "-$dev_pid"  # Ctrl-C, as a developer stops it
  for i in $(seq 1 30); do kill -0 "$dev_pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$dev_pid" 2>/dev/null || true
  rm "$work/dev.pid"
}
# served_within LABEL URL TEXT: polls until nginx serves TEXT; the time is reported (the
# target, 2 s, holds on a quiet machine; the bound here only catches a reload that never comes).
served_within() {
  local label=$1 t0 i
  t0=$(date +%s.%N)
  for i in $(seq 1 600); do
    if grep -q "$3" <<<"$(curl -sk --max-time 5 "$2")"; then
      echo "$label $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')s" \
        | tee -a "$work/timings"
      return 0
    fi
    sleep 0.1
  done
  fail "$2 never served $3"
}

copier_copy_equals_make_init() {
  cp -a "$snapshot" "$src"
  cd "$src"
  git init -q && git add -A && git_commit -m "kit" && git tag v0.1.0
  cd "$work"
  timed "copier copy:" copier copy --trust --defaults --vcs-ref v0.1.0 \
    --data name="Acme Notes" --data example="$example" "$src" "$copied"
  cd "$copied"
  cat .copier-answers.yml
  grep -qx 'name: Acme Notes' .copier-answers.yml
  grep -qx "example: $example" .copier-answers.yml
  if grep -Eiv '^(#|_commit|_src_path|name|example)' .copier-answers.yml; then
    fail "the answers file holds more than the name and the example choice"
  fi
  # The same tree as `make init`, which the cases above built, started and used.
  diff -r --exclude=.git --exclude=.copier-answers.yml "$work/acme-after-init" "$copied"
  docker compose config --quiet
}

copier_update_applies_the_next_version() {
  cd "$src"
  printf '\n# New in v0.2.0.\nNEW_SETTING=1\n' >>.env.example
  sed -i '1s/$/ (v0.2.0)/' README.md
  git add -A && git_commit -m "v0.2.0" && git tag v0.2.0
  cd "$copied"
  git init -q && git add -A && git_commit -m "generated"
  printf '\n# Our own setting.\n' >>wsgi_app/config/settings.py
  sed -i '3s/^/Our own words. /' README.md
  git add -A && git_commit -m "our change"
  copier update --trust --defaults --vcs-ref v0.2.0
  git status --short
  if grep -rIl --exclude-dir=.git '^<<<<<<< ' . || find . -name '*.rej' | grep .; then
    fail "copier update left conflicts"
  fi
  grep -qx '_commit: v0.2.0' .copier-answers.yml
  grep -qx 'NEW_SETTING=1' .env.example
  head -1 README.md | grep -qx '# Acme Notes.*(v0.2.0)' || fail "heading: $(head -1 README.md)"
  grep -q '^Our own words. ' README.md
  grep -qx '# Our own setting.' wsgi_app/config/settings.py
  local left
  left=$(leftovers .)
  [ -z "$left" ] || fail "the update brought the kit's names back: $left"
}

copy_working_tree "$snapshot"
log "tools image (copier, git, pytest)"
DOCKER_BUILDKIT=0 docker build --quiet --tag "$tools" scripts/template >/dev/null

run_case init_unit_tests init_unit_tests
run_case make_init make_init
run_case startapp_with_a_model_and_a_view startapp_with_a_model_and_a_view
run_case project_builds_and_serves project_builds_and_serves
run_case superuser_without_a_terminal superuser_without_a_terminal
run_case dev_loop_serves_edits_without_a_rebuild dev_loop_serves_edits_without_a_rebuild
run_case copier_copy_equals_make_init copier_copy_equals_make_init
run_case copier_update_applies_the_next_version copier_update_applies_the_next_version
write_report

log "timings"
cat "$work/timings" 2>/dev/null || true
[ "$failures" = 0 ]
