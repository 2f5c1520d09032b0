"""Boards and cards through the API: CRUD, permissions, lists, concurrency, uploads."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from board.models import Board, Card

pytestmark = pytest.mark.django_db

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d6a4e50000000049454e44ae426082"
)


def test_board_crud_round_trip(as_alice, alice):
    created = as_alice.post("/api/boards/", {"name": "Roadmap"}, format="json")
    assert created.status_code == 201
    board = created.json()
    assert board["owner"] == "alice"
    assert board["members"] == []
    url = f"/api/boards/{board['id']}/"
    assert as_alice.patch(url, {"name": "Roadmap 2027"}, format="json").json()["name"] == (
        "Roadmap 2027"
    )
    assert as_alice.get(url).json()["name"] == "Roadmap 2027"
    assert as_alice.delete(url).status_code == 204
    assert as_alice.get(url).status_code == 404


def test_others_boards_are_invisible(as_bob, board, card):
    assert as_bob.get("/api/boards/").json()["count"] == 0
    assert as_bob.get(f"/api/boards/{board.pk}/").status_code == 404
    assert as_bob.get(f"/api/boards/{board.pk}/cards/").status_code == 404
    assert as_bob.get(f"/api/cards/{card.pk}/").status_code == 404
    response = as_bob.patch(f"/api/cards/{card.pk}/", {"title": "mine"}, format="json")
    assert response.status_code == 404
    card.refresh_from_db()
    assert card.title == "First"


def test_members_see_and_change_but_only_the_owner_deletes(as_alice, as_bob, bob, board, card):
    board.members.add(bob)  # as accepting an invitation does (test_invitations.py)
    assert as_alice.get(f"/api/boards/{board.pk}/").json()["members"] == ["bob"]
    assert as_bob.get("/api/boards/").json()["count"] == 1
    assert (
        as_bob.patch(f"/api/cards/{card.pk}/", {"column": "done"}, format="json").status_code == 200
    )
    denied = as_bob.delete(f"/api/boards/{board.pk}/")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"
    assert (
        as_bob.patch(f"/api/boards/{board.pk}/", {"members": []}, format="json").status_code == 403
    )
    assert Board.objects.filter(pk=board.pk).exists()


def test_members_cannot_be_added_and_the_answer_reveals_no_username(as_alice, bob, board):
    """Joining takes the invitee's consent: an existing user and a made-up name get the same
    refusal, and nobody becomes a member."""
    answers = [
        as_alice.patch(f"/api/boards/{board.pk}/", {"members": [name]}, format="json")
        for name in ("bob", "nobody-by-that-name")
    ]
    assert [a.status_code for a in answers] == [422, 422]
    assert answers[0].json() == answers[1].json()
    assert "members" in answers[0].json()["error"]["fields"]
    assert not board.members.exists()


def test_owner_removes_a_member(as_alice, bob, board):
    board.members.add(bob)
    response = as_alice.patch(f"/api/boards/{board.pk}/", {"members": []}, format="json")
    assert response.status_code == 200
    assert response.json()["members"] == []
    assert not board.members.exists()


def test_anonymous_gets_401(client_for, board):
    response = client_for().get("/api/boards/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_empty_board_name_is_422(as_alice):
    response = as_alice.post("/api/boards/", {"name": ""}, format="json")
    assert response.status_code == 422
    assert "name" in response.json()["error"]["fields"]


def test_put_is_not_offered(as_alice, board):
    assert as_alice.put(f"/api/boards/{board.pk}/", {"name": "x"}, format="json").status_code == 405


def test_card_list_paginates_filters_orders_and_searches(as_alice, board):
    assert as_alice.get(f"/api/boards/{board.pk}/cards/").json()["count"] == 0  # 200, empty
    for i, column in enumerate(["todo", "todo", "doing", "done", "done"]):
        Card.objects.create(board=board, title=f"card {i}", column=column, position=i)
    url = f"/api/boards/{board.pk}/cards/"
    page = as_alice.get(url, {"page_size": 2}).json()
    assert page["count"] == 5
    assert len(page["results"]) == 2
    assert page["next"]
    assert [c["column"] for c in as_alice.get(url, {"column": "done"}).json()["results"]] == [
        "done",
        "done",
    ]
    ordered = as_alice.get(url, {"ordering": "-position"}).json()["results"]
    assert [c["position"] for c in ordered] == [4, 3, 2, 1, 0]
    assert [c["title"] for c in as_alice.get(url, {"search": "card 3"}).json()["results"]] == [
        "card 3"
    ]
    assert as_alice.get(url, {"column": "someday"}).status_code == 422
    # Every lookup of the filter set applies, alone or beside other parameters.
    in_and_range = {"column__in": "todo,done", "position__gte": 1, "ordering": "position"}
    assert [c["position"] for c in as_alice.get(url, in_and_range).json()["results"]] == [1, 3, 4]
    assert as_alice.get(url, {"position__lte": "soon"}).status_code == 422


def test_card_list_query_count_does_not_grow_with_its_length(as_alice, board):
    """No N+1: listing 3 or 40 cards (with attachments) costs the same number of queries."""

    def list_queries(n):
        Card.objects.filter(board=board).delete()
        Card.objects.bulk_create(Card(board=board, title=f"c{i}", position=i) for i in range(n))
        with CaptureQueriesContext(connection) as queries:
            response = as_alice.get(f"/api/boards/{board.pk}/cards/", {"page_size": 100})
        assert len(response.json()["results"]) == n
        return len(queries)

    few, many = list_queries(3), list_queries(40)
    assert few == many
    assert few >= 2  # user, the page with its count: the capture really saw the queries


def test_board_list_query_count_does_not_grow(as_alice, alice, bob):
    def list_queries(n):
        Board.objects.all().delete()
        for i in range(n):
            Board.objects.create(name=f"b{i}", owner=alice).members.add(bob)
        with CaptureQueriesContext(connection) as queries:
            assert as_alice.get("/api/boards/").json()["count"] == n
        return len(queries)

    few, many = list_queries(2), list_queries(20)
    assert few == many
    assert few >= 3  # user, boards with their count, members


def test_card_update_with_current_if_match(as_alice, card):
    got = as_alice.get(f"/api/cards/{card.pk}/")
    assert got["ETag"] == '"1"'
    response = as_alice.patch(
        f"/api/cards/{card.pk}/", {"title": "Renamed"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert response["ETag"] == '"2"'


def test_unchanged_card_is_304_for_if_none_match(as_alice, card):
    response = as_alice.get(f"/api/cards/{card.pk}/", HTTP_IF_NONE_MATCH='"1"')
    assert response.status_code == 304
    assert response["ETag"] == '"1"'
    assert not response.content
    card.version = 2
    card.save()
    assert as_alice.get(f"/api/cards/{card.pk}/", HTTP_IF_NONE_MATCH='"1"').status_code == 200


def test_stale_if_match_is_412_and_changes_nothing(as_alice, as_bob, bob, card, board):
    board.members.add(bob)
    assert (
        as_bob.patch(f"/api/cards/{card.pk}/", {"title": "Bob's"}, format="json").status_code == 200
    )
    stale = as_alice.patch(
        f"/api/cards/{card.pk}/", {"title": "Alice's"}, format="json", HTTP_IF_MATCH='"1"'
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "precondition_failed"
    card.refresh_from_db()
    assert (card.title, card.version) == ("Bob's", 2)
    assert as_alice.delete(f"/api/cards/{card.pk}/", HTTP_IF_MATCH='"1"').status_code == 412
    assert Card.objects.filter(pk=card.pk).exists()
    assert as_alice.delete(f"/api/cards/{card.pk}/", HTTP_IF_MATCH='"2"').status_code == 204
    assert not Card.objects.filter(pk=card.pk).exists()


def test_version_is_read_only(as_alice, card):
    response = as_alice.patch(f"/api/cards/{card.pk}/", {"version": 99}, format="json")
    assert response.json()["version"] == 2


def test_invalid_card_column_is_422(as_alice, card):
    response = as_alice.patch(f"/api/cards/{card.pk}/", {"column": "later"}, format="json")
    assert response.status_code == 422
    assert "column" in response.json()["error"]["fields"]


def test_card_create_returns_etag_and_location(as_alice, board):
    response = as_alice.post(f"/api/boards/{board.pk}/cards/", {"title": "New"}, format="json")
    assert response.status_code == 201
    assert response["ETag"] == '"1"'
    assert response["Location"] == f"/api/cards/{response.json()['id']}/"


def test_upload_image_attachment(as_alice, card, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("pixel.png", PNG, content_type="image/png")
    response = as_alice.post(f"/api/cards/{card.pk}/attachments/", {"file": upload})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["content_type"] == "image/png"
    assert body["original_name"] == "pixel.png"
    assert body["url"].startswith("http://testserver/media/attachments/")
    assert not body["url"].endswith("pixel.png")  # our name, not the client's
    files = list((settings.MEDIA_ROOT / "attachments").rglob("*.png"))
    assert len(files) == 1
    assert files[0].read_bytes() == PNG
    listed = as_alice.get(f"/api/cards/{card.pk}/").json()["attachments"]
    assert [a["id"] for a in listed] == [body["id"]]


def test_upload_of_a_disallowed_type_is_415(as_alice, card):
    from django.core.files.uploadedfile import SimpleUploadedFile

    # Named and labelled as a PNG, but it is HTML: judged by its bytes.
    fake = SimpleUploadedFile("x.png", b"<html><script>alert(1)</script>", "image/png")
    response = as_alice.post(f"/api/cards/{card.pk}/attachments/", {"file": fake})
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_too_large_upload_is_413(as_alice, card, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.ATTACHMENT_MAX_BYTES = len(PNG) - 1
    upload = SimpleUploadedFile("pixel.png", PNG, content_type="image/png")
    response = as_alice.post(f"/api/cards/{card.pk}/attachments/", {"file": upload})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not card.attachments.exists()


def test_oversized_json_body_is_413(as_alice, board):
    response = as_alice.post(
        f"/api/boards/{board.pk}/cards/",
        {"title": "x", "description": "y" * (2 * 1024 * 1024)},
        format="json",
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_board_pages_render(client, django_user_model):
    user = django_user_model.objects.create_user("erin", password="x-pass-123")
    client.force_login(user)
    board = Board.objects.create(name="Erin's", owner=user)
    assert b"Erin&#x27;s" in client.get("/").content  # the board list is the home page
    page = client.get(f"/boards/{board.pk}/")
    assert page.status_code == 200
    assert f'data-board-id="{board.pk}"'.encode() in page.content
    assert b'id="invite"' in page.content  # the owner shares from the page
    assert b'class="version"' not in page.content
