"""Refuse migrations that break the release still running during a deploy (expand/contract)."""

from django.core.management.base import BaseCommand, CommandError

from core.migration_safety import lint


class Command(BaseCommand):
    help = "Fail on migrations that drop, rename or narrow without `contract = True`."

    def handle(self, *args, **options):
        problems = lint()
        if problems:
            raise CommandError(
                "these migrations break the release that is still serving during a deploy:\n  "
                + "\n  ".join(problems)
                + "\nAdd first, drop a release later: move the drop/rename into a later release's "
                "migration and mark that migration `contract = True` (README, 'Operating it')."
            )
        self.stdout.write("lint_migrations: every migration only adds (expand/contract)")
