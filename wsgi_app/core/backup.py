"""Postgres backups, restore and restore drill: `python -m core.backup <command>`.

Runs in the `backup` service (the wsgi image plus the Postgres 17 tools):
  run            the service: a backup every BACKUP_SCHEDULE, each followed by a drill
  now            one backup now (`make backup`)
  list           the backups, newest first
  verify NAME    the file exists, its sha256 matches, pg_restore can read its table of contents
  restore NAME   verify, then replace the live database with the backup in one transaction
  drill [NAME]   restore the newest (or NAME) into a throwaway Postgres server in this
                 container, run Django's `check` and `migrate --check`, compare every table's
                 row count with the counts recorded at backup time
  health         the healthcheck: a good drill within two schedule intervals

A backup is three files in BACKUP_DIR: NAME.dump (pg_dump custom format), NAME.dump.sha256
(`sha256sum -c` format, for copies off the host) and NAME.json (metadata: checksum, size,
row count of every table, taken in the same snapshot as the dump). Every command prints one
JSON line; a refusal exits 1 with a message saying what is wrong and changes nothing.
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily
from psycopg import sql

from core import logging as kit_logging

BACKUP_DIR = Path(os.environ.get("BACKUP_DIR", "/backups"))
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/17/bin"))
# The drill's last success, read by the healthcheck and the metrics (BackupMetrics).
LAST_GOOD_DRILL = BACKUP_DIR / "last-good-drill.json"
STARTED = Path(tempfile.gettempdir()) / "backup-service-started"
# Objects owned by whoever restores: the throwaway server's user, or the live one.
RESTORE = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error"]
NAME_RE = re.compile(r"^[A-Za-z0-9._-]+$")


class Refused(Exception):
    """A request that cannot be carried out; the message says why and what to do."""


def log(**fields) -> None:
    """One line in the kit's log shape (core/logging.py); the fields say what happened."""
    level = "ERROR" if fields.get("ok") is False else "INFO"
    msg = str(fields.get("event", "backup"))
    print(kit_logging.line(level, "core.backup", msg, **fields), flush=True)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def schedule_seconds(value: str) -> int:
    """BACKUP_SCHEDULE: daily, hourly, or a number with m or h (30m, 6h)."""
    named = {"daily": 86400, "hourly": 3600}
    if value in named:
        return named[value]
    m = re.fullmatch(r"([1-9][0-9]*)([mh])", value)
    if not m:
        raise Refused(f"BACKUP_SCHEDULE must be daily, hourly, or like 30m or 6h, not {value!r}")
    return int(m[1]) * (60 if m[2] == "m" else 3600)


def keep_count() -> int:
    value = os.environ.get("BACKUP_KEEP", "7")
    if not value.isdigit() or int(value) < 1:
        raise Refused(f"BACKUP_KEEP must be a whole number of at least 1, not {value!r}")
    return int(value)


def password() -> str:
    if os.environ.get("POSTGRES_PASSWORD"):
        return os.environ["POSTGRES_PASSWORD"]
    secret = Path("/run/kit-secrets/postgres_password")
    return secret.read_text().strip() if secret.exists() else ""


def live_db() -> dict[str, str]:
    """Connection settings of the stack's database (the same variables Django reads)."""
    return {
        "host": os.environ.get("DATABASE_HOST", "postgres"),
        "port": os.environ.get("DATABASE_PORT", "5432"),
        "dbname": os.environ.get("DATABASE_NAME", "app"),
        "user": os.environ.get("DATABASE_USER", "app"),
        "password": password(),
    }


def pg_env(db: dict[str, str]) -> dict[str, str]:
    """libpq variables for the command-line tools: the password never appears in `ps`."""
    return {
        **os.environ,
        "PGHOST": db["host"],
        "PGPORT": db["port"],
        "PGDATABASE": db["dbname"],
        "PGUSER": db["user"],
        "PGPASSWORD": db["password"],
    }


def run(cmd: list[str], db: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=pg_env(db), check=True, capture_output=True, text=True, **kwargs)  # noqa: S603


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    tables = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    ).fetchall()
    counts = {}
    for (table,) in tables:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        counts[table] = conn.execute(query).fetchone()[0]
    return counts


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- backup ------------------------------------------------------------------------------
def backup() -> dict:
    """pg_dump of the live database; row counts from the same snapshot, so they match exactly."""
    started = time.monotonic()
    db = live_db()
    name = f"{db['dbname']}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    while (BACKUP_DIR / f"{name}.json").exists():  # two in one second: the names sort by time
        time.sleep(1)
        name = f"{db['dbname']}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    dump = BACKUP_DIR / f"{name}.dump"
    partial = dump.with_suffix(".partial")
    with psycopg.connect(**{k: db[k] for k in db}) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        counts = row_counts(conn)
        run(["pg_dump", "-Fc", f"--snapshot={snapshot}", "-f", str(partial)], db)
        conn.rollback()
    digest = sha256(partial)
    partial.rename(dump)
    dump.with_name(f"{dump.name}.sha256").write_text(f"{digest}  {dump.name}\n")
    meta = {
        "name": name,
        "file": dump.name,
        "sha256": digest,
        "bytes": dump.stat().st_size,
        "created": now_iso(),
        "database": db["dbname"],
        "row_counts": counts,
    }
    (BACKUP_DIR / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    pruned = prune(keep_count())
    return {
        "event": "backup",
        "ok": True,
        "backup": name,
        "bytes": meta["bytes"],
        "sha256": digest,
        "tables": len(counts),
        "rows": sum(counts.values()),
        "pruned": pruned,
        "seconds": round(time.monotonic() - started, 2),
    }


def backups() -> list[str]:
    """Names of complete backups (metadata written last), newest first."""
    return sorted((p.stem for p in BACKUP_DIR.glob("*.json") if p != LAST_GOOD_DRILL), reverse=True)


def prune(keep: int) -> list[str]:
    old = backups()[keep:]
    for name in old:
        for suffix in (".json", ".dump", ".dump.sha256"):
            (BACKUP_DIR / f"{name}{suffix}").unlink(missing_ok=True)
    return old


# ---- verify / restore --------------------------------------------------------------------
def verify(name: str) -> dict:
    """The backup's metadata, once the file is complete and readable; Refused otherwise."""
    if not NAME_RE.match(name):
        raise Refused(f"{name!r} is not a backup name; `make backup-list` lists them")
    meta_path, dump = BACKUP_DIR / f"{name}.json", BACKUP_DIR / f"{name}.dump"
    if not meta_path.exists() or not dump.exists():
        listed = ", ".join(backups()[:5]) or "none yet"
        raise Refused(f"no backup {name!r} in {BACKUP_DIR} (newest: {listed})")
    meta = json.loads(meta_path.read_text())
    actual = sha256(dump)
    if actual != meta["sha256"]:
        raise Refused(
            f"{dump.name} is corrupt or truncated: sha256 {actual[:12]}…, recorded "
            f"{meta['sha256'][:12]}… ({dump.stat().st_size} of {meta['bytes']} bytes); "
            "use another backup"
        )
    try:
        run(["pg_restore", "--list", str(dump)], live_db())
    except subprocess.CalledProcessError as e:
        raise Refused(f"pg_restore cannot read {dump.name}: {e.stderr.strip()}") from e
    return meta


def restore(name: str) -> dict:
    """Replace the live database's objects with the backup's, all or nothing (one transaction).

    The caller (scripts/restore.sh) stops the writers first and runs migrate afterwards.
    """
    started = time.monotonic()
    meta = verify(name)
    db = live_db()
    try:
        run(
            [
                *RESTORE,
                "--clean",
                "--if-exists",
                "--single-transaction",
                "-d",
                db["dbname"],
                str(BACKUP_DIR / meta["file"]),
            ],
            db,
        )
    except subprocess.CalledProcessError as e:
        raise Refused(f"restore rolled back, the database is unchanged: {e.stderr.strip()}") from e
    return {
        "event": "restore",
        "ok": True,
        "backup": name,
        "seconds": round(time.monotonic() - started, 2),
    }


# ---- drill -------------------------------------------------------------------------------
def drill(name: str | None = None) -> dict:
    """Restore into a throwaway Postgres server (a temporary directory, a Unix socket only),
    then ask Django and the row counts whether it is the database that was backed up."""
    started = time.monotonic()
    if name is None:
        found = backups()
        if not found:
            raise Refused(f"no backup in {BACKUP_DIR} yet: `make backup` takes one")
        name = found[0]
    meta = verify(name)
    live = live_db()
    with tempfile.TemporaryDirectory(prefix="drill-") as tmp:
        data, sock = Path(tmp, "data"), Path(tmp)
        db = {**live, "host": str(sock), "port": "5432", "password": ""}
        run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                db["user"],
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            db,
        )
        settings = (
            f"-c listen_addresses='' -c unix_socket_directories={sock} "
            "-c fsync=off -c shared_buffers=16MB"
        )
        # -l: the server's output to a file, not to our pipes (run() would wait on them).
        pg_ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", f"{tmp}/server.log", "-s"]
        run([*pg_ctl, "-o", settings, "-w", "start"], db)
        try:
            run(["createdb", db["dbname"]], db)
            run([*RESTORE, "-d", db["dbname"], str(BACKUP_DIR / meta["file"])], db)
            django_env = {"DATABASE_HOST": str(sock), "DATABASE_PORT": "5432"}
            for command in (["check"], ["migrate", "--check"]):
                manage(command, django_env)
            with psycopg.connect(**{k: db[k] for k in db if k != "password"}) as conn:
                restored = row_counts(conn)
        finally:
            run([*pg_ctl, "-m", "immediate", "stop"], db)
    expected = meta["row_counts"]
    tables = sorted(expected.keys() | restored.keys())
    wrong = {
        t: [expected.get(t), restored.get(t)] for t in tables if expected.get(t) != restored.get(t)
    }
    if wrong:
        raise Refused(f"drill of {name}: row counts differ (table: [recorded, restored]): {wrong}")
    result = {
        "event": "drill",
        "ok": True,
        "backup": name,
        "tables": len(restored),
        "rows": sum(restored.values()),
        "seconds": round(time.monotonic() - started, 2),
    }
    LAST_GOOD_DRILL.write_text(json.dumps({"time": now_iso(), "epoch": time.time(), **result}))
    return result


def manage(command: list[str], extra_env: dict[str, str]) -> None:
    try:
        subprocess.run(  # noqa: S603
            [sys.executable, "/app/manage.py", *command],
            env={**os.environ, **extra_env},
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as e:
        output = (e.stdout + e.stderr).strip()[-2000:]
        raise Refused(f"drill: `manage.py {' '.join(command)}` failed: {output}") from e


# ---- the service -------------------------------------------------------------------------
def next_due(interval: int, newest: float, now: float) -> float:
    """Backups run on the clock: daily at 00:00 UTC, hourly on the hour, 30m at :00 and :30.
    One missed while the service was down (the newest backup is older than an interval) runs
    at once; a stack without any backup waits for the first slot."""
    if newest and now - newest >= interval:
        return now
    return (now // interval + 1) * interval


def newest_backup_time() -> float:
    """When the newest backup was written (Unix time), 0 if there is none."""
    found = backups()
    return (BACKUP_DIR / f"{found[0]}.json").stat().st_mtime if found else 0


class BackupMetrics:
    """The last good backup and drill, read from the backups volume at each scrape (Unix
    time; 0 when there has never been one). Alert rules: monitoring/rules/kit.yml."""

    def collect(self):
        newest = newest_backup_time()
        drilled = (
            json.loads(LAST_GOOD_DRILL.read_text())["epoch"] if LAST_GOOD_DRILL.exists() else 0
        )
        yield GaugeMetricFamily(
            "kit_backup_last_success_timestamp_seconds",
            "When the newest backup was written",
            value=float(newest),
        )
        yield GaugeMetricFamily(
            "kit_backup_last_drill_success_timestamp_seconds",
            "When a backup last passed its restore drill",
            value=float(drilled),
        )


def serve() -> None:
    """Back up on BACKUP_SCHEDULE, drill each backup, log one JSON line per run."""
    interval, keep = schedule_seconds(os.environ.get("BACKUP_SCHEDULE", "daily")), keep_count()
    STARTED.write_text(str(time.time()))
    # The last good backup and drill as metrics, on an internal port (Prometheus: backup:9100).
    REGISTRY.register(BackupMetrics())
    start_http_server(int(os.environ.get("METRICS_PORT", "9100")))
    log(event="backup-service", interval_seconds=interval, keep=keep, dir=str(BACKUP_DIR))
    # As PID 1, SIGTERM does nothing unless handled: `docker stop` (a deploy, a restore) would
    # wait out the grace period. A backup cut short leaves only its .partial file.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        newest = newest_backup_time()
        wait = next_due(interval, newest, time.time()) - time.time()
        if wait > 0:
            time.sleep(min(wait, 300))  # re-check: someone may have run `make backup`
            continue
        try:
            result = backup()
            result["drill"] = drill(result["backup"])
        except (Refused, psycopg.Error, subprocess.CalledProcessError, OSError) as e:
            detail = getattr(e, "stderr", None) or str(e)
            log(event="backup", ok=False, error=str(detail).strip())
            time.sleep(60)  # retry soon, not in a tight loop
            continue
        log(**result)


def healthy() -> bool:
    """A good drill within two intervals, or the service younger than one interval plus an
    hour (nothing was due yet)."""
    interval = schedule_seconds(os.environ.get("BACKUP_SCHEDULE", "daily"))
    now = time.time()
    drilled = json.loads(LAST_GOOD_DRILL.read_text())["epoch"] if LAST_GOOD_DRILL.exists() else 0
    if now - drilled < 2 * interval:
        return True
    return STARTED.exists() and now - float(STARTED.read_text()) < interval + 3600


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command == "run":
            serve()
        elif command == "now":
            log(**backup())
        elif command == "list":
            for name in backups():
                print(name)
        elif command == "verify" and len(args) == 1:
            meta = verify(args[0])
            log(event="verify", ok=True, backup=args[0], bytes=meta["bytes"])
        elif command == "restore" and len(args) == 1:
            log(**restore(args[0]))
        elif command == "drill" and len(args) <= 1:
            log(**drill(*args))
        elif command == "health":
            return 0 if healthy() else 1
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Refused as e:
        log(event=command, ok=False, error=str(e))
        print(f"backup {command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
