"""The Postgres role the metrics exporter logs in with: pg_monitor rights only (read the
statistics views), its password from the secrets file. Idempotent; `compose/migrate` runs it
at every release, so a changed secret is applied too."""

from pathlib import Path

from django.core.management.base import BaseCommand
from django.db import connection
from psycopg import sql

ROLE = "kit_monitor"
SECRET = Path("/run/kit-secrets/postgres_monitor_password")


class Command(BaseCommand):
    help = "Create or update the read-only monitoring role (pg_monitor) for postgres-exporter."

    def handle(self, *args, **options):
        if not SECRET.is_file():
            self.stdout.write(f"monitoring role: no {SECRET}, skipped")
            return
        password = SECRET.read_text().strip()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [ROLE])
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            # Literal, not a parameter: utility statements take no bind parameters.
            cursor.execute(
                sql.SQL("{} ROLE {} LOGIN PASSWORD {}")
                .format(sql.SQL(verb), sql.Identifier(ROLE), sql.Literal(password))
                .as_string(cursor.connection)
            )
            cursor.execute(
                sql.SQL("GRANT pg_monitor TO {}")
                .format(sql.Identifier(ROLE))
                .as_string(cursor.connection)
            )
        self.stdout.write(f"monitoring role {ROLE}: {verb.lower()}d, pg_monitor")
