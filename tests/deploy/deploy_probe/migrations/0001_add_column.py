"""Expand: a nullable column on a table the old release keeps reading and writing (every
request loads its user; every login writes last_login)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE auth_user ADD COLUMN deploy_probe text NULL",
            reverse_sql="ALTER TABLE auth_user DROP COLUMN deploy_probe",
        )
    ]
