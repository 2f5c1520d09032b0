"""Pure helpers the users rely on to judge what they receive."""

from datetime import UTC, datetime, timedelta

import pytest

from kit_users.common import browser_origin, event_age_ms, event_id_key, items_of
from kit_users.realtime import OrderChecker


def test_stream_ids_order_numerically_not_as_text():
    assert event_id_key("1732413600000-10") > event_id_key("1732413600000-9")
    assert event_id_key("1732413600001-0") > event_id_key("1732413600000-99")


def test_order_checker_flags_duplicates_and_reordering():
    check = OrderChecker()
    assert check.problem("user.1", "100-0") is None
    assert check.problem("user.1", "100-1") is None
    assert "duplicate" in check.problem("user.1", "100-1")
    assert check.problem("user.1", "99-5") is not None
    assert check.problem("user.2", "1-0") is None  # topics are independent


def test_event_age_uses_the_envelope_timestamp():
    ts = (datetime.now(UTC) - timedelta(milliseconds=250)).isoformat(timespec="milliseconds")
    assert 240 <= event_age_ms(ts.replace("+00:00", "Z")) < 1000


def test_list_responses_paginated_or_bare():
    assert items_of([1, 2]) == [1, 2]
    assert items_of({"results": [1], "next": None}) == [1]
    with pytest.raises(ValueError, match="not a list"):
        items_of({"error": {"code": "x"}})


@pytest.mark.parametrize(
    ("host", "origin"),
    [
        ("https://127.0.0.1:443", "https://127.0.0.1"),
        ("https://127.0.0.1", "https://127.0.0.1"),
        ("https://localhost:18443", "https://localhost:18443"),
        ("http://localhost:80/", "http://localhost"),
    ],
)
def test_origin_is_what_a_browser_sends(host, origin):
    # Django's CSRF check compares Origin with the Host header, which has no default port.
    assert browser_origin(host) == origin
