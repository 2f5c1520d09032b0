"""Real-time access sets: the registry, `user.<id>`, rebuild, revocation, publish_event."""

import json

import pytest
from django.core.management import CommandError, call_command

from core import realtime

# Real transactions: the sets are written when a transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)


def members(redis_db, topic):
    return {int(u) for u in redis_db.smembers(f"rt:acl:{topic}")}


def test_every_user_may_read_their_own_topic_only(alice, bob, redis_db):
    assert members(redis_db, f"user.{alice.pk}") == {alice.pk}
    assert members(redis_db, f"user.{bob.pk}") == {bob.pk}


def test_deactivating_a_user_revokes_their_topic(alice, redis_db):
    alice.is_active = False
    alice.save()
    assert members(redis_db, f"user.{alice.pk}") == set()
    [(_, fields)] = redis_db.xrange(f"events:user.{alice.pk}")
    event = json.loads(fields["event"])
    assert (event["type"], event["data"]) == ("access.revoked", {"user": alice.pk})


def test_lost_sets_are_rebuilt_when_a_token_is_asked_for(as_alice, alice, bob, redis_db):
    redis_db.flushdb()  # Redis lost everything
    assert as_alice.post("/api/realtime/token").status_code == 200
    assert redis_db.get(realtime.READY_KEY) == "1"
    assert members(redis_db, f"user.{bob.pk}") == {bob.pk}


def test_rebuild_drops_sets_of_topics_nobody_may_read(alice, redis_db):
    redis_db.sadd("rt:acl:user.999999", "999999")  # a user that no longer exists
    call_command("realtime_sync")
    assert not redis_db.exists("rt:acl:user.999999")
    assert members(redis_db, f"user.{alice.pk}") == {alice.pk}


def test_namespaces_are_checked_when_registered():
    with pytest.raises(ValueError, match="must match"):
        realtime.register("Bad Name", lambda ids: {})
    with pytest.raises(ValueError, match="already registered"):
        realtime.register("user", lambda ids: {})
    with pytest.raises(LookupError, match="not registered"):
        realtime.changed("nothing", 1)


def test_publish_event_command(alice, redis_db, capsys):
    call_command("publish_event", f"user.{alice.pk}", "note.created", "--data", '{"text": "hi"}')
    event_id = capsys.readouterr().out.strip()
    [(entry_id, fields)] = redis_db.xrange(f"events:user.{alice.pk}")
    assert entry_id == event_id
    assert json.loads(fields["event"])["data"] == {"text": "hi"}
    for bad, message in (
        (("nothing.1", "x"), "registered namespace"),
        (("user.0", "x"), "positive id"),
        (("user.1", "x", "--data", "[1]"), "JSON object"),
        (("user.1", "x", "--data", "{"), "not JSON"),
    ):
        with pytest.raises(CommandError, match=message):
            call_command("publish_event", *bad)
