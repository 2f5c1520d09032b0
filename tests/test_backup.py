"""Backups as a user runs them: `make backup`, data deleted, `make restore` brings it back; a
truncated backup is refused and the database left alone; the restore drill passes on a good
backup and fails on a tampered one.

Marked `ops`: scripts/test.sh runs these last, with the `backup` service in the stack, and runs
scripts/backup.sh for them (the `host` fixture).
"""

import json

import pytest

from test_realtime import create_card

pytestmark = [pytest.mark.ops, pytest.mark.timeout(300)]


def take_backup(host) -> str:
    rc, output = host("backup now")
    assert rc == 0, output
    [line] = [json.loads(x) for x in output.splitlines() if x.startswith('{"ts"')]
    assert line["ok"], line
    assert line["tables"] > 0
    return line["backup"]


def in_backup_volume(containers, script: str) -> str:
    """Run a shell line in the backup service's container, in its /backups volume."""
    [ctr] = containers("backup")
    rc, out = ctr.exec_run(["sh", "-c", f"cd /backups && {script}"])
    assert rc == 0, out
    return out.decode()


def test_backup_delete_restore_brings_the_data_back(login, host):
    c = login("bob")
    board = c.post("/api/boards/", json={"name": "kept by the backup"}).json()["id"]
    titles = {create_card(c, board, f"card {i}")["title"] for i in range(3)}
    name = take_backup(host)

    assert c.delete(f"/api/boards/{board}/").status_code == 204
    assert c.get(f"/api/boards/{board}/").status_code == 404

    rc, output = host(f"backup restore {name}")
    assert rc == 0, output
    c = login("bob")  # the session row is in the restored database too
    assert c.get(f"/api/boards/{board}/").status_code == 200
    cards = c.get(f"/api/boards/{board}/cards/").json()["results"]
    assert {card["title"] for card in cards} == titles


def test_a_truncated_backup_is_refused_and_the_database_is_untouched(login, host, containers):
    c = login("bob")
    board = c.post("/api/boards/", json={"name": "after the backup"}).json()["id"]
    name = take_backup(host)
    create_card(c, board, "written after the backup")
    in_backup_volume(containers, f"truncate -s 2000 {name}.dump")

    rc, output = host(f"backup restore {name}")
    assert rc != 0
    assert "corrupt or truncated" in output
    assert "nothing was changed" in output
    cards = c.get(f"/api/boards/{board}/cards/").json()["results"]
    assert [card["title"] for card in cards] == ["written after the backup"]

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
        f"m['row_counts']['board_board'] += 1; json.dump(m, open(p, 'w'))\"",
    )
    rc, output = host("backup drill")
    assert rc != 0
    assert "row counts differ" in output
    assert "board_board" in output
