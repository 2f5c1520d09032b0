# Turns every line a program writes into the kit's log shape (docs/design.md, "Logs"): a JSON
# object with ts, level, service, logger, msg, request_id. Run by json-lines.sh with
# `service` (the compose service) and `stream` (stdout or stderr) set. What it reads:
#   - a JSON object with `request_id`: already the kit's shape (nginx's access log), unchanged;
#   - any other JSON object (Prometheus, Alertmanager, the exporters: --log.format=json):
#     time/ts, level and msg become the common keys, component (or logger) the logger, and
#     every other field stays as it is;
#   - nginx's error log "2026/12/02 10:00:00 [warn] 12#12: msg" or "nginx: [emerg] msg";
#   - Redis "1:M 02 Dec 2026 10:00:00.123 * msg" (marker . and - DEBUG, * INFO, # WARNING);
#   - Postgres "2026-12-02 10:00:00.123 UTC [42] LOG:  msg" (LOG INFO; FATAL, which ends one
#     session, ERROR; PANIC CRITICAL; DETAIL, HINT, STATEMENT... keep their line's level);
#   - a line starting with white space continues the line before (a multi-line statement);
#   - anything else (entrypoint scripts, a crash) is logged as it is: INFO on stdout, WARNING
#     on stderr. Blank lines carry nothing and are dropped.
# Written for busybox awk, which every wrapped image has (json-lines.sh).
# JSON-escapes s. In busybox awk "\\\\" in a replacement is one backslash.
function esc(s) {
    gsub(/\\/, "\\\\\\\\", s)
    gsub(/"/, "\\\\\"", s)
    gsub(/\t/, "\\\\t", s)
    gsub(/[[:cntrl:]]/, " ", s)
    return s
}
function emit(ts, lvl, lg, escaped_msg, extra) {
    last_level = lvl; last_logger = lg
    printf "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":\"%s\",\"logger\":\"%s\",\"msg\":\"%s\",\"request_id\":\"\"%s}\n", ts, lvl, service, lg, escaped_msg, extra
    fflush()
}
function now() { return strftime("%Y-%m-%dT%H:%M:%S.000Z", systime(), 1) }
# Takes the string field `key` out of `body` (a JSON object without its braces) and returns
# its value, still JSON-escaped; "" when there is none.
function take(key,    re, v) {
    re = "(^|,)\"" key "\":\"([^\"\\\\]|\\\\.)*\""
    if (!match(body, re)) return ""
    v = substr(body, RSTART, RLENGTH)
    body = substr(body, 1, RSTART - 1) substr(body, RSTART + RLENGTH)
    sub(/^,/, "", body)
    sub(/^,?"[^"]*":"/, "", v)
    return substr(v, 1, length(v) - 1)
}
function json_line(    ts, lvl, lg, msg) {
    body = substr(line, 2, length(line) - 2)
    ts = take("time"); if (ts == "") ts = take("ts"); if (ts == "") ts = now()
    lvl = tolower(take("level"))
    lvl = (lvl in lv) ? lv[lvl] : default_level
    lg = take("component"); if (lg == "") lg = take("logger"); if (lg == "") lg = service
    msg = take("msg")
    emit(ts, lvl, lg, msg, body == "" ? "" : "," body)
}
BEGIN {
    default_level = (stream == "stderr") ? "WARNING" : "INFO"
    lv["debug"] = "DEBUG"; lv["info"] = "INFO"; lv["notice"] = "INFO"; lv["warn"] = "WARNING"
    lv["warning"] = "WARNING"; lv["error"] = "ERROR"; lv["crit"] = "CRITICAL"
    lv["critical"] = "CRITICAL"; lv["alert"] = "CRITICAL"; lv["emerg"] = "CRITICAL"
    lv["fatal"] = "CRITICAL"; lv["panic"] = "CRITICAL"
    # Postgres severities; DEBUG1..5 are matched by prefix below.
    pg["LOG"] = "INFO"; pg["INFO"] = "INFO"; pg["NOTICE"] = "INFO"; pg["WARNING"] = "WARNING"
    pg["ERROR"] = "ERROR"; pg["FATAL"] = "ERROR"; pg["PANIC"] = "CRITICAL"
    redis["."] = "DEBUG"; redis["-"] = "DEBUG"; redis["*"] = "INFO"; redis["#"] = "WARNING"
    split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", names, " ")
    for (i = 1; i <= 12; i++) month[names[i]] = sprintf("%02d", i)
    last_level = default_level; last_logger = stream
}
{
    line = $0
    sub(/\r$/, "", line)
    if (line ~ /^[[:space:]]*$/) next
    if (line ~ /^\{.*\}[[:space:]]*$/) {
        sub(/[[:space:]]+$/, "", line)
        if (line ~ /"request_id":/) { print line; fflush(); next }
        json_line(); next
    }
    if (match(line, /^[0-9][0-9][0-9][0-9]\/[0-9][0-9]\/[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] \[[a-z]+\] /)) {
        # nginx writes its own time in the container's zone, UTC.
        name = substr(line, 22, RLENGTH - 23)
        ts = substr(line, 1, 4) "-" substr(line, 6, 2) "-" substr(line, 9, 2) "T" substr(line, 12, 8) ".000Z"
        emit(ts, (name in lv) ? lv[name] : "ERROR", "nginx.error", esc(substr(line, RLENGTH + 1)), "")
    } else if (match(line, /^nginx: \[[a-z]+\] /)) {
        # `nginx -t` and start-up failures.
        name = substr(line, 9, RLENGTH - 10)
        emit(now(), (name in lv) ? lv[name] : "ERROR", "nginx.error", esc(substr(line, RLENGTH + 1)), "")
    } else if (match(line, /^[0-9]+:[CMSX] [0-9][0-9] [A-Z][a-z][a-z] [0-9][0-9][0-9][0-9] [0-9:.]+ [-.*#] /)) {
        # Redis, in the container's zone (UTC).
        split(substr(line, 1, RLENGTH), f, " ")
        ts = f[4] "-" month[f[3]] "-" f[2] "T" f[5] "Z"
        emit(ts, redis[f[6]], "redis", esc(substr(line, RLENGTH + 1)), "")
    } else if (match(line, /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9:.]+ [A-Za-z0-9+-]+ \[[0-9]+\] [A-Z0-9]+: +/)) {
        # Postgres' default log_line_prefix "%m [%p] ", in log_timezone (UTC in the image).
        split(substr(line, 1, RLENGTH), f, " ")
        ts = f[1] "T" f[2] (f[3] == "UTC" ? "Z" : "")
        sev = substr(f[5], 1, length(f[5]) - 1)
        msg = substr(line, RLENGTH + 1)
        if (sev in pg) lvl = pg[sev]
        else if (sev ~ /^DEBUG/) lvl = "DEBUG"
        else { lvl = last_level; msg = sev ": " msg }  # DETAIL, HINT, STATEMENT, CONTEXT...
        emit(ts, lvl, "postgres", esc(msg), "")
    } else if (line ~ /^[[:space:]]/) {
        emit(now(), last_level, last_logger, esc(line), "")
    } else {
        emit(now(), default_level, stream, esc(line), "")
    }
}
