"""The backup service's schedule: on the clock, a missed backup caught up, bad values refused.
(Backups, restores and drills themselves run end to end: tests/test_backup.py.)"""

import pytest

from core.backup import Refused, next_due, schedule_seconds

DAY = 86400
MIDNIGHT = 1_800_000_000 // DAY * DAY  # some UTC midnight


@pytest.mark.parametrize(
    ("value", "seconds"), [("daily", DAY), ("hourly", 3600), ("30m", 1800), ("6h", 21600)]
)
def test_schedule_values(value, seconds):
    assert schedule_seconds(value) == seconds


@pytest.mark.parametrize("value", ["", "weekly", "0h", "5s", "1.5h", "*/5 * * * *"])
def test_a_bad_schedule_is_refused_with_what_to_write(value):
    with pytest.raises(Refused, match="daily, hourly, or like 30m or 6h"):
        schedule_seconds(value)


def test_daily_backups_run_at_midnight_utc():
    # Today's 00:00 backup, now 10:00: the next one is at the coming midnight.
    assert next_due(DAY, MIDNIGHT + 5, MIDNIGHT + 36000) == MIDNIGHT + DAY


def test_a_backup_missed_while_the_stack_was_down_runs_at_once():
    now = MIDNIGHT + 36000
    assert next_due(DAY, MIDNIGHT - 2 * DAY, now) == now


def test_a_new_stack_waits_for_the_first_slot():
    assert next_due(3600, 0, MIDNIGHT + 600) == MIDNIGHT + 3600
