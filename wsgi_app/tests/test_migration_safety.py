"""Expand/contract is checked: a migration that drops, renames or narrows is refused unless
it is marked as a contract step; the kit's own migrations pass."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader

from core import migration_safety
from core.migration_safety import unsafe_operations


# Django's auth app stands in for a project app: every project has it, with the same models.
def state_after_initial():
    return MigrationLoader(None).project_state(
        ("auth", "0012_alter_user_first_name_max_length"), at_end=True
    )


def migration(*operations, contract=False):
    m = migrations.Migration("0099_test", "auth")
    m.operations = list(operations)
    if contract:
        m.contract = True
    return m


def test_the_kits_migrations_only_add():
    call_command("lint_migrations")  # raises CommandError otherwise


@pytest.mark.parametrize(
    "operation",
    [
        migrations.RemoveField("user", "email"),
        migrations.RenameField("user", "email", "mail"),
        migrations.DeleteModel("group"),
        migrations.RenameModel("group", "team"),
        migrations.AlterField("group", "name", models.CharField(max_length=50)),
        migrations.AlterField("group", "name", models.IntegerField(default=0)),
        migrations.RunSQL("ALTER TABLE auth_user DROP COLUMN email"),
    ],
)
def test_a_migration_that_breaks_the_previous_release_is_refused(operation):
    problems = unsafe_operations(migration(operation), state_after_initial())
    assert len(problems) == 1, problems


def test_adding_is_allowed_and_a_marked_contract_step_passes():
    adds = migration(
        migrations.AddField("user", "note", models.TextField(null=True)),
        migrations.AlterField("group", "name", models.CharField(max_length=400)),
    )
    assert unsafe_operations(adds, state_after_initial()) == []
    drop = migration(migrations.RemoveField("user", "email"), contract=True)
    assert unsafe_operations(drop, state_after_initial()) == []


def test_the_release_step_command_names_the_migration_and_the_fix(monkeypatch):
    monkeypatch.setattr(
        migration_safety, "lint", lambda: ["notes.0099_test: Remove field title from note"]
    )
    monkeypatch.setattr("core.management.commands.lint_migrations.lint", migration_safety.lint)
    with pytest.raises(CommandError, match=r"(?s)notes\.0099_test.*contract = True"):
        call_command("lint_migrations")
