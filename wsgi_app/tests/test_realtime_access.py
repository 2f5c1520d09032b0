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


@pytest.fixture
def namespace():
    """A namespace of this test's own whose readers answer from a dict the test changes."""
    answers: dict[int, set[int]] = {}
    realtime.register("synctest", lambda ids: {i: answers.get(i, set()) for i in ids or answers})
    yield answers
    realtime._namespaces.pop("synctest")


def test_a_large_sync_writes_every_set_and_revokes_each_lost_reader(namespace, redis_db):
    # More topics than one batch, and one set larger than one SADD call of the script.
    namespace.update({i: {i, i + 1} for i in range(1, 1202)})
    namespace[5000] = set(range(1, 12002))
    written = realtime.sync("synctest")
    assert len(written) == 1202
    assert members(redis_db, "synctest.1201") == {1201, 1202}
    assert len(members(redis_db, "synctest.5000")) == 12001

    namespace[7] = {7}
    namespace[5000] = set(range(2, 12002))
    realtime.sync("synctest", [7, 5000])
    revoked = [
        (topic, json.loads(fields["event"])["data"]["user"])
        for topic in ("synctest.7", "synctest.5000")
        for _, fields in redis_db.xrange(f"events:{topic}")
    ]
    assert revoked == [("synctest.7", 8), ("synctest.5000", 1)]


def test_a_sync_that_read_before_a_revocation_cannot_write_after_it(namespace, redis_db):
    """Two syncs of one topic: the first read `{1}` from the database, then the reader was
    removed and a second sync started. The second must wait, so the set ends empty."""
    import threading

    from django.db import connection

    namespace[1] = {1}
    first_read, release_first = threading.Event(), threading.Event()
    readers = realtime._namespaces["synctest"]

    def slow_readers(ids):
        answer = readers(ids)
        if threading.current_thread().name == "first":
            first_read.set()
            release_first.wait(10)
        return answer

    def run():
        try:
            realtime.sync("synctest", [1])
        finally:
            connection.close()

    realtime._namespaces["synctest"] = slow_readers
    first = threading.Thread(target=run, name="first")
    first.start()
    assert first_read.wait(10)
    namespace[1] = set()  # the revoking commit
    second = threading.Thread(target=run, name="second")
    second.start()
    second.join(1)
    assert second.is_alive(), "the second sync did not wait for the first"
    release_first.set()
    first.join(10)
    second.join(10)
    assert members(redis_db, "synctest.1") == set()
