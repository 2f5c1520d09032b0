"""The example's sharing by consent: invitations, caps, access sets and revocation."""

import json

import jwt
import pytest
from django.conf import settings

from board import api
from board.models import Board, Invitation

# Real transactions: the access sets are written when a transaction commits.
pytestmark = pytest.mark.django_db(transaction=True)


def readers(redis_db, board):
    return {int(u) for u in redis_db.smembers(f"rt:acl:board.{board.pk}")}


def invite(client, board, username):
    return client.post(
        f"/api/boards/{board.pk}/invitations/", {"username": username}, format="json"
    )


def test_invite_accept_then_removal_revokes(as_alice, as_bob, alice, bob, board, redis_db):
    assert readers(redis_db, board) == {alice.pk}
    assert invite(as_alice, board, "bob").status_code == 202
    assert readers(redis_db, board) == {alice.pk}  # invited is not a member
    [waiting] = as_bob.get("/api/invitations/").json()["results"]
    assert waiting["board"] == {"id": board.pk, "name": board.name}
    assert waiting["invited_by"] == "alice"
    accepted = as_bob.post(f"/api/invitations/{waiting['id']}/accept")
    assert accepted.status_code == 200
    assert accepted.json()["members"] == ["bob"]
    assert readers(redis_db, board) == {alice.pk, bob.pk}
    assert as_bob.get(f"/api/boards/{board.pk}/").status_code == 200

    as_alice.patch(f"/api/boards/{board.pk}/", {"members": []}, format="json")
    assert readers(redis_db, board) == {alice.pk}
    revoked = [
        json.loads(fields["event"])
        for _, fields in redis_db.xrange(f"events:board.{board.pk}")
        if json.loads(fields["event"])["type"] == "access.revoked"
    ]
    assert [e["data"] for e in revoked] == [{"user": bob.pk}]


def test_decline_and_others_cannot_answer(as_alice, as_bob, client_for, make_user, board):
    invite(as_alice, board, "bob")
    invitation = Invitation.objects.get(username="bob")
    as_carol = client_for(make_user("carol"))
    assert as_carol.post(f"/api/invitations/{invitation.pk}/accept").status_code == 404
    assert as_bob.post(f"/api/invitations/{invitation.pk}/decline").status_code == 204
    assert not board.members.exists()
    assert not Invitation.objects.exists()


def test_the_answer_never_tells_whether_a_username_exists(as_alice, bob, board):
    real, made_up = invite(as_alice, board, "bob"), invite(as_alice, board, "no-such-user-xyz")
    assert real.status_code == made_up.status_code == 202
    assert real.json() == made_up.json()
    listed = as_alice.get(f"/api/boards/{board.pk}/invitations/").json()["results"]
    assert sorted(i["username"] for i in listed) == ["bob", "no-such-user-xyz"]


def test_only_the_owner_invites(as_alice, as_bob, bob, board):
    board.members.add(bob)
    assert invite(as_bob, board, "carol").status_code == 403
    other = Board.objects.create(name="Not yours", owner=bob)
    assert invite(as_alice, other, "carol").status_code == 404


def test_pending_invitations_are_capped(as_alice, alice, board, monkeypatch):
    monkeypatch.setattr(api, "MAX_PENDING_PER_BOARD", 3)
    answers = [invite(as_alice, board, f"user{i}").status_code for i in range(4)]
    assert answers == [202, 202, 202, 429]
    assert board.invitations.count() == 3
    monkeypatch.setattr(api, "MAX_PENDING_PER_BOARD", 100)
    monkeypatch.setattr(api, "MAX_PENDING_PER_INVITER", 4)
    second = Board.objects.create(name="Second", owner=alice)
    accepted, refused = invite(as_alice, second, "user8"), invite(as_alice, second, "user9")
    assert [accepted.status_code, refused.status_code] == [202, 429]
    assert refused.json()["error"]["code"] == "rate_limited"


def test_membership_spam_changes_nothing_for_the_victim(
    as_alice, as_bob, alice, bob, redis_db, monkeypatch
):
    """Issue 12: invitations to 50 boards leave bob's token and live access as they were."""
    monkeypatch.setattr(api, "MAX_PENDING_PER_INVITER", 1000)
    before = as_bob.post("/api/realtime/token").json()["token"]
    boards = [Board.objects.create(name=f"spam {i}", owner=alice) for i in range(50)]
    for board in boards:
        assert invite(as_alice, board, "bob").status_code == 202
    after = as_bob.post("/api/realtime/token").json()["token"]
    assert len(after) == len(before)
    assert all(readers(redis_db, board) == {alice.pk} for board in boards)
    assert as_bob.get("/api/boards/").json()["count"] == 0


def test_token_stays_small_for_a_member_of_1000_boards(as_bob, alice, bob):
    boards = Board.objects.bulk_create(Board(name=f"b{i}", owner=alice) for i in range(1000))
    Board.members.through.objects.bulk_create(
        Board.members.through(board_id=b.pk, user_id=bob.pk) for b in boards
    )
    assert Board.objects.visible_to(bob).count() == 1000
    token = as_bob.post("/api/realtime/token").json()["token"]
    assert len(token.encode()) < 1024
    claims = jwt.decode(
        token, settings.REALTIME_TOKEN_KEY, algorithms=["HS256"], audience="realtime"
    )
    assert claims["sub"] == str(bob.pk)
