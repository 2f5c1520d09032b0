"""Rebuild every real-time access set from the database (the migrate step runs it)."""

from django.core.management.base import BaseCommand

from core import realtime


class Command(BaseCommand):
    help = "Rebuild the real-time access sets in Redis from the database."

    def handle(self, *args, **options):
        written = realtime.rebuild()
        namespaces = ", ".join(realtime.namespaces())
        self.stdout.write(f"access sets rebuilt: {written} topics ({namespaces})")
