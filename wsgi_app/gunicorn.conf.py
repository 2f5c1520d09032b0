"""Gunicorn for the Django service, behind nginx. Every value says why it is what it is."""

import os

from gunicorn.glogging import Logger


def container_cpus() -> int:
    """CPUs this container may use: the cgroup v2 quota if set, else the CPUs we may run on.

    os.cpu_count() reports the host's CPUs and would oversize a CPU-limited container.
    """
    try:
        with open("/sys/fs/cgroup/cpu.max") as cpu_max:
            quota, period = cpu_max.read().split()
        if quota != "max":
            return max(1, round(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return len(os.sched_getaffinity(0))


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()  # compose passes "" for "use the default"
    return int(value) if value else default


bind = "0.0.0.0:8000"

# gthread: each worker process runs a thread pool, so a request waiting on Postgres or
# Redis does not hold a whole process, and keep-alive connections from nginx are kept
# (sync workers cannot). Processes give CPU parallelism past the GIL.
worker_class = "gthread"
workers = env_int("GUNICORN_WORKERS", 2 * container_cpus() + 1)  # Gunicorn's FAQ starting point
threads = env_int("GUNICORN_THREADS", 4)  # also the size of each worker's Postgres pool

# A request running this long is stuck: kill the worker, nginx's proxy_read_timeout (35 s)
# is just above, so nginx answers 504 only after Gunicorn gave up.
timeout = 30
# On SIGTERM (deploy, scale-down) finish in-flight requests for up to 30 s; compose's
# stop_grace_period (35 s) is longer, so Docker never SIGKILLs a draining worker.
graceful_timeout = 30
# Keep idle upstream connections longer than nginx does (its upstream keepalive_timeout is
# 60 s): the side that closes first must be nginx, or it may reuse a socket we just closed
# and answer 502 ("upstream prematurely closed connection").
keepalive = 75

# Recycle workers now and then to bound slow memory growth; the jitter keeps all workers
# from restarting at once. nginx retries idempotent requests on the next upstream.
max_requests = 2000
max_requests_jitter = 200

# The worker heartbeat is a file touched every few seconds; on Docker's overlay filesystem
# that can block and look like a hung worker. /dev/shm is tmpfs.
worker_tmp_dir = "/dev/shm"  # noqa: S108  (tmpfs on purpose, see above)

# Trust X-Forwarded-* only from the container's own internal networks, where nginx is the only
# HTTP client (compose/start derives them); anyone else's are ignored.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Only X-Forwarded-Proto, which nginx always overwrites. Gunicorn's default also trusts
# X-Forwarded-Protocol/-Ssl, which a client could send (benoitc/gunicorn#2350).
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# Load Django once in the arbiter and fork: less memory per worker and faster restarts.
# Safe because nothing opens a socket at import time (pool, Redis, loop start lazily).
preload_app = True

# Gunicorn 27's runtime control socket (gunicornc) is not used here; /app is read-only to
# the app user, and a restart is how this service is reconfigured.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Gunicorn's own messages in the kit's one log shape (core/logging.py); access lines are
# already JSON (JsonLogger below) and pass through as they are.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "raw": {"format": "%(message)s"},
    },
    "handlers": {
        "error": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "raw",
            "stream": "ext://sys.stdout",
        },
    },
    # Gunicorn merges this over its defaults, whose root logger names a handler replaced here.
    "root": {"handlers": ["error"], "level": "INFO"},
    "loggers": {
        "gunicorn.error": {"handlers": ["error"], "level": loglevel.upper(), "propagate": False},
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
    },
}

# Metrics (core/metrics.py): the workers write their values under PROMETHEUS_MULTIPROC_DIR
# (compose/start empties it) and the arbiter serves the sum on this internal port (never
# proxied by nginx).
metrics_port = env_int("METRICS_PORT", 9100)


def when_ready(server):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and metrics_port:
        from core import metrics

        metrics.serve_multiprocess(metrics_port)


def child_exit(server, worker):
    from core import metrics

    metrics.worker_exited(worker.pid)


class JsonLogger(Logger):
    """One JSON object per request, with nginx's X-Request-ID to join the two logs.

    A JSON access_log_format string would break on a quote in a URL or user agent;
    json.dumps escapes correctly.
    """

    def access(self, resp, req, environ, request_time):
        if not self.cfg.accesslog or req.path in ("/api/healthz", "/api/readyz"):
            return  # the healthcheck every 5 s is noise
        headers = dict(req.headers)
        fields = {
            "client": headers.get("X-REAL-IP", environ.get("REMOTE_ADDR", "")),
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "status": resp.status_code,
            "bytes": getattr(resp, "sent", 0),
            "duration_ms": round(request_time.seconds * 1000 + request_time.microseconds / 1000, 2),
            "user_agent": headers.get("USER-AGENT", ""),
        }
        from core import logging as kit_logging  # Django's package: after the config loaded

        rid = headers.get("X-REQUEST-ID", "")[:64]
        self.access_log.info(kit_logging.line("INFO", "gunicorn.access", "request", rid, **fields))


logger_class = JsonLogger
