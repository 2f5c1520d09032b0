"""Backups as a user runs them: `make backup`, data deleted, `make restore` brings it back; a
truncated backup is refused and the database left alone; the restore drill passes on a good
backup and fails on a tampered one.

Marked `ops`: scripts/test.sh runs these last, with the `backup` service in the stack, and runs
scripts/backup.sh for them (the `host` fixture).
"""

import json
import secrets

import pytest

pytestmark = [pytest.mark.ops, pytest.mark.timeout(300)]


def take_backup(host) -> str:
    rc, output = host("backup now")
    assert rc == 0, output
    [line] = [json.loads(x) for x in output.splitlines() if x.startswith('{"ts"')]
    assert line["ok"], line
    assert line["tables"] > 0
    return line["backup"]


def new_account(containers) -> str:
    """A fresh account, made in a wsgi container (no login, so nginx's login limit stays out of
    it); the data these tests back up and restore is the kit's own: its accounts."""
    name = f"backup-{secrets.token_hex(4)}"
    # `--password=...`: a generated password may start with "-".
    manage(containers, "ensure_user", name, f"--password={secrets.token_urlsafe(16)}")
    return name


def accounts(containers, *names: str) -> set[str]:
    """Which of these accounts the database holds now."""
    listed = manage(
        containers,
        "shell",
        "--verbosity=0",  # no "N objects imported automatically" line in the output
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"print(*get_user_model().objects.filter(username__in={list(names)!r})"
        ".values_list('username', flat=True))",
    )
    return set(listed.split())


def manage(containers, *command: str) -> str:
    rc, out = containers("wsgi")[0].exec_run(["python", "manage.py", *command])
    assert rc == 0, out.decode()
    return out.decode()


def in_backup_volume(containers, script: str) -> str:
    """Run a shell line in the backup service's container, in its /backups volume."""
    [ctr] = containers("backup")
    rc, out = ctr.exec_run(["sh", "-c", f"cd /backups && {script}"])
    assert rc == 0, out
    return out.decode()


def test_backup_delete_restore_brings_the_data_back(login, host, containers):
    c = login("bob")
    kept = new_account(containers)
    name = take_backup(host)

    manage(
        containers,
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.filter(username={kept!r}).delete()",
    )
    later = new_account(containers)
    assert accounts(containers, kept, later) == {later}

    rc, output = host(f"backup restore {name}")
    assert rc == 0, output
    assert accounts(containers, kept, later) == {kept}
    # bob's session row is in the restored database too: still logged in.
    assert c.get("/api/auth/me").json()["username"] == "bob"


def test_a_truncated_backup_is_refused_and_the_database_is_untouched(host, containers):
    name = take_backup(host)
    later = new_account(containers)
    in_backup_volume(containers, f"truncate -s 2000 {name}.dump")

    rc, output = host(f"backup restore {name}")
    assert rc != 0
    assert "corrupt or truncated" in output
    assert "nothing was changed" in output
    assert accounts(containers, later) == {later}

    rc, output = host("backup restore no-such-backup")
    assert rc != 0
    assert "no backup 'no-such-backup'" in output


def test_the_restore_drill_passes_on_a_good_backup_and_fails_on_a_tampered_one(host, containers):
    name = take_backup(host)
    rc, output = host("backup drill")
    assert rc == 0, output
    drill = json.loads(in_backup_volume(containers, "cat last-good-drill.json"))
    assert drill["backup"] == name
    assert drill["tables"] > 0

    # The dump says one thing, the metadata (the live database at backup time) another.
    in_backup_volume(
        containers,
        f"python -c \"import json; p='{name}.json'; m=json.load(open(p)); "
        f"m['row_counts']['auth_user'] += 1; json.dump(m, open(p, 'w'))\"",
    )
    rc, output = host("backup drill")
    assert rc != 0
    assert "row counts differ" in output
    assert "auth_user" in output
