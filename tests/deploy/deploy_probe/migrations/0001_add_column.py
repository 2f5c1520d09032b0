"""Expand: a nullable column on a table the old release keeps reading and writing."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("board", "0001_initial")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE board_card ADD COLUMN deploy_probe text NULL",
            reverse_sql="ALTER TABLE board_card DROP COLUMN deploy_probe",
        )
    ]
