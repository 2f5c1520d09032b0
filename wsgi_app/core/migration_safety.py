"""Expand/contract, checked: a deploy runs the new schema under the old code while the old
containers drain, so a release may only add (tables, nullable columns, indexes). Dropping,
renaming or narrowing what the previous release still reads comes a release later, in a
migration marked `contract = True` (README, "Operating it", shows a pair).

`manage.py lint_migrations` (run by the release step before `migrate`) refuses the rest.
"""

import re

from django.apps import apps
from django.conf import settings
from django.db import migrations
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState

# Each breaks the previous release's queries the moment it is applied.
DESTRUCTIVE = (
    migrations.RemoveField,
    migrations.DeleteModel,
    migrations.RenameField,
    migrations.RenameModel,
    migrations.AlterModelTable,
)
DESTRUCTIVE_SQL = re.compile(r"\b(DROP\s+(TABLE|COLUMN)|RENAME\b)", re.IGNORECASE)


def narrows(old, new) -> str:
    """Why an AlterField breaks the old code's writes or reads, or ""."""
    if old.get_internal_type() != new.get_internal_type():
        return f"changes the type {old.get_internal_type()} -> {new.get_internal_type()}"
    if old.null and not new.null:
        return "makes the column NOT NULL (old code may still write NULL)"
    if old.max_length and new.max_length and new.max_length < old.max_length:
        return f"shortens max_length {old.max_length} -> {new.max_length}"
    return ""


def unsafe_operations(migration, state: ProjectState) -> list[str]:
    """What in `migration` (applied on top of `state`) the previous release cannot live with."""
    if getattr(migration, "contract", False):
        return []
    problems = []
    for op in migration.operations:
        if isinstance(op, DESTRUCTIVE):
            problems.append(op.describe())
        elif isinstance(op, migrations.AlterField):
            model = state.models.get((migration.app_label, op.model_name_lower))
            old = model.fields.get(op.name) if model else None
            why = narrows(old, op.field) if old else ""
            if why:
                problems.append(f"{op.describe()}: {why}")
        elif isinstance(op, migrations.RunSQL) and DESTRUCTIVE_SQL.search(str(op.sql)):
            problems.append(f"raw SQL that drops or renames: {str(op.sql)[:80]!r}")
        op.state_forwards(migration.app_label, state)
    return problems


def first_party_labels() -> set[str]:
    """The project's own apps (under BASE_DIR); Django's and libraries' are not ours to lint."""
    base = str(settings.BASE_DIR)
    return {a.label for a in apps.get_app_configs() if a.path.startswith(base)}


def lint() -> list[str]:
    """One line per unsafe operation in the project's migrations, e.g.
    "notes.0007_x: Remove field title from note"."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    ours = first_party_labels()
    found = []
    for key in sorted(k for k in loader.disk_migrations if k[0] in ours):
        state = loader.project_state(key, at_end=False)
        found += [
            f"{key[0]}.{key[1]}: {p}" for p in unsafe_operations(loader.disk_migrations[key], state)
        ]
    return found
