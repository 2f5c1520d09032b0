# serve_requests DIR PID HANDLER: the host side of the `host` fixture (tests/conftest.py).
# Tests in a container write DIR/N.request ("what arg"); until PID exits, each is run as
# `HANDLER what arg`, its output kept in N.log (and echoed), its exit code in N.done.
# shellcheck shell=bash
serve_requests() {
  local dir=$1 pid=$2 handler=$3 request n what arg rc
  while kill -0 "$pid" 2>/dev/null; do
    for request in "$dir"/*.request; do
      [ -e "$request" ] || continue
      n=${request%.request}
      read -r what arg <"$request" || true # no newline at the end
      rc=0
      "$handler" "$what" "$arg" >"$n.log" 2>&1 || rc=$?
      cat "$n.log"
      rm "$request" && echo "$rc" >"$n.done"
    done
    sleep 0.3
  done
}
