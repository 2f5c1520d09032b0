# Turns every line nginx and its entrypoint write into the kit's log shape (docs/design.md,
# "Logs"): a JSON object with ts, level, service, logger, msg, request_id. Lines that are
# already JSON objects (the access log, logging.conf) pass unchanged. The error log's own
# format, "2026/12/02 10:00:00 [warn] 12#12: message" (or "nginx: [emerg] message" before
# the log is open), gives ts and level; any other line (entrypoint scripts) is logged as it
# is, at `default_level` (set per stream by json-lines.sh).
function esc(s) {
    gsub(/\\/, "\\\\", s)
    gsub(/"/, "\\\"", s)
    gsub(/\t/, "\\t", s)
    gsub(/[[:cntrl:]]/, " ", s)
    return s
}
BEGIN {
    lv["debug"] = "DEBUG"; lv["info"] = "INFO"; lv["notice"] = "INFO"; lv["warn"] = "WARNING"
    lv["error"] = "ERROR"; lv["crit"] = "CRITICAL"; lv["alert"] = "CRITICAL"; lv["emerg"] = "CRITICAL"
}
/^\{/ { print; fflush(); next }
{
    ts = strftime("%Y-%m-%dT%H:%M:%S.000Z", systime(), 1)
    level = default_level; logger = "entrypoint"; msg = $0
    if (match($0, /^[0-9][0-9][0-9][0-9]\/[0-9][0-9]\/[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] \[[a-z]+\] /)) {
        # nginx writes its own time in the container's zone, UTC.
        ts = substr($0, 1, 4) "-" substr($0, 6, 2) "-" substr($0, 9, 2) "T" substr($0, 12, 8) ".000Z"
        name = substr($0, 22, RLENGTH - 23)
        level = (name in lv) ? lv[name] : "ERROR"
        logger = "nginx.error"
        msg = substr($0, RLENGTH + 1)
    } else if (match($0, /^nginx: \[[a-z]+\] /)) {
        # `nginx -t` and start-up failures: "nginx: [emerg] message".
        name = substr($0, 9, RLENGTH - 10)
        level = (name in lv) ? lv[name] : "ERROR"
        logger = "nginx.error"
        msg = substr($0, RLENGTH + 1)
    }
    printf "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":\"nginx\",\"logger\":\"%s\",\"msg\":\"%s\",\"request_id\":\"\"}\n", ts, level, logger, esc(msg)
    fflush()
}
