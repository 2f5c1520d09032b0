#!/bin/bash
# The image's entrypoint wrapper: everything the container writes, nginx's error log and the
# entrypoint scripts included, leaves as one JSON object per line (json-lines.awk). nginx
# cannot write its error log as JSON itself. Each stream goes through a FIFO to its own awk;
# this script stays PID 1, hands every signal to nginx (docker stop sends SIGQUIT: a graceful
# stop), waits for the awks to write the last lines, and exits with nginx's status.
# `-W interactive`: mawk (the image's awk) reads line by line, not in blocks.
set -o nounset
here=$(dirname "$0")
fifos=$(mktemp -d)
mkfifo "$fifos/out" "$fifos/err"
awk -W interactive -v default_level=INFO -f "$here/json-lines.awk" <"$fifos/out" &
awk -W interactive -v default_level=WARNING -f "$here/json-lines.awk" <"$fifos/err" >&2 &
"$@" >"$fifos/out" 2>"$fifos/err" &
child=$!
for sig in HUP INT QUIT TERM USR1 USR2 WINCH; do
  # shellcheck disable=SC2064  # $sig now, $child when the signal comes
  trap "kill -s $sig \$child 2>/dev/null" "$sig"
done
while :; do
  wait "$child"
  status=$?
  kill -0 "$child" 2>/dev/null || break  # a trapped signal ended the wait, not nginx
done
wait  # the awks end when nginx's last writer closes: every line is out
rm -rf "$fifos"
exit "$status"
