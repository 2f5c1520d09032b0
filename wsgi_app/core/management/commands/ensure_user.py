"""Create a user, or reset its password and flags: idempotent, for provisioning scripts."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or update a user with the given password (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--superuser", action="store_true")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, password, superuser, email, **options):
        user, created = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        user.is_active = True
        if email:
            user.email = email
        if superuser:
            user.is_staff = user.is_superuser = True
        user.save()
        verb = "created" if created else "updated"
        self.stdout.write(f"user {username} {verb}{' (superuser)' if superuser else ''}")
