"""Events: published after commit (stream, then live), none after rollback, Redis down is OK."""

import json
import logging  # example
import socket
import time

import pytest
import redis
from django.db import transaction

from core import events

# Real transactions: on_commit callbacks run only when a transaction really commits.
pytestmark = pytest.mark.django_db(transaction=True)


def stream(redis_db, topic):
    return [
        {"id": entry_id, **json.loads(fields["event"])}
        for entry_id, fields in redis_db.xrange(f"events:{topic}")
    ]


# example-begin
def test_card_write_is_streamed_and_sent_live_after_commit(
    as_alice, alice, board, redis_db, live_messages
):
    topic = f"board.{board.pk}"
    collect = live_messages(topic)
    response = as_alice.post(f"/api/boards/{board.pk}/cards/", {"title": "Live"}, format="json")
    assert response.status_code == 201
    card = response.json()

    [event] = stream(redis_db, topic)
    assert event["type"] == "card.created"
    assert event["topic"] == topic
    assert event["actor"] == alice.pk
    assert event["data"]["id"] == card["id"]
    assert event["data"]["version"] == 1
    assert event["ts"].endswith("Z")

    [live] = collect()
    assert live["type"] == "rt.event"
    assert live["event"] == event  # same envelope, with the stream entry id as its id


def test_update_and_delete_events_follow_in_order(as_alice, board, card, redis_db):
    topic = f"board.{board.pk}"
    as_alice.patch(f"/api/cards/{card.pk}/", {"column": "doing"}, format="json")
    as_alice.delete(f"/api/cards/{card.pk}/")
    published = stream(redis_db, topic)
    assert [e["type"] for e in published] == ["card.updated", "card.deleted"]
    assert published[0]["data"]["column"] == "doing"
    assert published[0]["data"]["version"] == 2
    assert published[0]["id"] < published[1]["id"] or len(published[0]["id"]) < len(
        published[1]["id"]
    )


# example-end
def test_nothing_is_published_when_the_transaction_rolls_back(alice, redis_db):
    topic = f"user.{alice.pk}"
    with transaction.atomic():
        events.publish_on_commit(topic, "card.created", alice.pk, {"id": 0})
        transaction.set_rollback(True)
    assert stream(redis_db, topic) == []
    with transaction.atomic():
        events.publish_on_commit(topic, "card.created", alice.pk, {"id": 1})
        assert stream(redis_db, topic) == []  # not before the commit either
    assert [e["data"] for e in stream(redis_db, topic)] == [{"id": 1}]


def test_stream_is_bounded(alice, redis_db, settings):
    settings.EVENT_STREAM_MAXLEN = 10
    for i in range(500):
        events.publish(f"user.{alice.pk}", "note.updated", alice.pk, {"i": i})
    # MAXLEN ~ trims whole radix-tree nodes (100 entries by default): bounded, not exact.
    assert redis_db.xlen(f"events:user.{alice.pk}") <= 110


# example-begin
def test_write_succeeds_when_redis_is_down(
    as_alice, board, card, settings, reset_event_clients, caplog
):
    # Redis is gone for events and for the cache: the session comes from Postgres.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}
    }
    before = events.failures
    with caplog.at_level(logging.ERROR, logger="core.events"):
        response = as_alice.patch(
            f"/api/cards/{card.pk}/", {"title": "Still saved"}, format="json", HTTP_IF_MATCH='"1"'
        )
    assert response.status_code == 200
    card.refresh_from_db()
    assert (card.title, card.version) == ("Still saved", 2)
    assert events.failures == before + 1
    assert "event not published" in caplog.text
    health = as_alice.get("/api/healthz").json()
    assert health["event_publish_failures"] == before + 1


# example-end
def test_live_push_failure_keeps_the_stream_entry(alice, redis_db, monkeypatch, caplog):
    def refuse(*args):
        raise redis.ConnectionError("gone after the XADD")

    monkeypatch.setattr(events.redis_client(), "publish", refuse)
    before = events.failures
    event = events.publish(f"user.{alice.pk}", "note.updated", alice.pk, {"id": 7})
    assert event is not None
    assert events.failures == before + 1
    assert [e["id"] for e in stream(redis_db, f"user.{alice.pk}")] == [event["id"]]
    assert "event not pushed live" in caplog.text


def test_after_a_failure_redis_is_skipped_for_a_while(alice, settings, reset_event_clients, caplog):
    """A Redis that hangs costs one request its timeout; the next ones skip it at once."""
    with socket.socket() as hung:  # accepts connections, never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        settings.REDIS_URL = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
        before = events.failures
        started = time.perf_counter()
        assert events.publish(f"user.{alice.pk}", "note.updated", alice.pk, {}) is None
        first = time.perf_counter() - started
        started = time.perf_counter()
        assert events.publish(f"user.{alice.pk}", "note.updated", alice.pk, {}) is None
        second = time.perf_counter() - started
    assert first >= 1.5  # the 2 s socket timeout
    assert second < 0.05
    assert events.failures == before + 2


def test_breaker_closes_when_the_background_probe_succeeds():
    from core.breaker import Breaker

    breaker = Breaker(probe_interval=0.05)
    answers = iter([ConnectionError("down"), ConnectionError("down"), None])

    def probe():
        answer = next(answers)
        if answer:
            raise answer

    breaker.trip(probe)
    assert not breaker.allows()
    deadline = time.monotonic() + 2
    while not breaker.allows() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert breaker.allows()
    assert next(answers, "all used") == "all used"  # it took the third probe
