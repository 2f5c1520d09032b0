#!/usr/local/lib/kit-log/busybox sh
# `json-lines.sh SERVICE COMMAND...`: runs COMMAND with everything it writes, on stdout and
# stderr, turned into the kit's log shape, one JSON object per line (json-lines.awk). For
# programs that cannot write it themselves: nginx (its error log), Redis, Postgres, the
# one-shot `secrets` and the monitoring images (log/Dockerfile adds this to them).
# A static busybox beside this script gives the shell, awk and mkfifo in any image, scratch
# ones included. Each stream goes through a FIFO (in /dev/shm: writable under a read-only root
# filesystem) to its own awk; this script stays PID 1, hands every signal to COMMAND (docker
# stop: a graceful stop), waits for the awks to write the last lines, and exits with
# COMMAND's status.
set -o nounset
here=$(dirname "$0")
bb=$here/busybox
service=$1
shift
fifos=$("$bb" mktemp -d /dev/shm/kit-log.XXXXXX) || exit 1
"$bb" mkfifo "$fifos/out" "$fifos/err" || exit 1
"$bb" awk -v service="$service" -v stream=stdout -f "$here/json-lines.awk" <"$fifos/out" &
"$bb" awk -v service="$service" -v stream=stderr -f "$here/json-lines.awk" <"$fifos/err" >&2 &
"$@" >"$fifos/out" 2>"$fifos/err" &
child=$!
for sig in HUP INT QUIT TERM USR1 USR2 WINCH; do
  # shellcheck disable=SC2064  # $sig now, $child when the signal comes
  trap "kill -s $sig \$child 2>/dev/null" "$sig"
done
while :; do
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || break  # a trapped signal ended the wait, not COMMAND
done
wait  # the awks end when COMMAND's last writer closes: every line is out
"$bb" rm -rf "$fifos"
exit "$status"
