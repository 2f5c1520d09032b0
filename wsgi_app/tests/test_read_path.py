"""The card list's read path (values() rows, no serializer), the orjson renderer and the ETag
middleware write what DRF's serializer and renderer would: the same bytes, fewer queries."""

import datetime
import decimal
import uuid

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer as DRFJSONRenderer

from board.api import card_queryset
from board.models import Attachment, Card
from board.serializers import CardSerializer
from core.renderers import JSONRenderer


def test_card_list_writes_the_serializers_bytes(as_alice, alice, board):
    cards = [
        Card.objects.create(
            board=board, title=f"c{i}", description='é ü \u2028 \x01 "q"', position=i
        )
        for i in range(3)
    ]
    for name in ("b.png", "a.pdf"):
        Attachment.objects.create(
            card=cards[1],
            file=f"attachments/{board.pk}/{name}",
            original_name=name,
            content_type="image/png",
            size=3,
            uploaded_by=alice,
        )
    response = as_alice.get(f"/api/boards/{board.pk}/cards/")
    assert response.status_code == 200
    cards = CardSerializer(
        card_queryset().filter(board=board), many=True, context={"request": response.wsgi_request}
    ).data
    expected = {"count": 3, "next": None, "previous": None, "results": cards}
    assert response.content == DRFJSONRenderer().render(expected)
    assert [a["original_name"] for a in response.json()["results"][1]["attachments"]] == [
        "b.png",
        "a.pdf",
    ]


def test_card_list_is_one_query_for_the_page_and_its_count(as_alice, board):
    Card.objects.bulk_create(Card(board=board, title=f"c{i}", position=i) for i in range(5))
    url = f"/api/boards/{board.pk}/cards/"
    with CaptureQueriesContext(connection) as queries:
        page = as_alice.get(url, {"page_size": 2, "page": 2}).json()
    assert page["count"] == 5
    assert [c["position"] for c in page["results"]] == [2, 3]
    assert page["next"]
    assert page["previous"]
    assert len([q for q in queries if '"board_card"' in q["sql"]]) == 1
    last = as_alice.get(url, {"page_size": 2, "page": 3}).json()
    assert (last["count"], len(last["results"]), last["next"]) == (5, 1, None)
    for beyond in ("4", "x", "0"):
        missing = as_alice.get(url, {"page_size": 2, "page": beyond})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


def test_unchanged_list_answers_304_without_a_body(as_alice, board):
    url = f"/api/boards/{board.pk}/cards/"
    Card.objects.create(board=board, title="one")
    first = as_alice.get(url)
    tag = first["ETag"]
    again = as_alice.get(url, HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 304
    assert again.content == b""
    Card.objects.create(board=board, title="two")
    changed = as_alice.get(url, HTTP_IF_NONE_MATCH=tag)
    assert changed.status_code == 200
    assert len(changed.json()["results"]) == 2
    assert changed["ETag"] != tag


def test_renderer_writes_drfs_bytes():
    data = {
        "lazy": gettext_lazy("Not found."),
        "decimal": decimal.Decimal("1.50"),
        "utc": datetime.datetime(2026, 12, 2, 1, 2, 3, tzinfo=datetime.UTC),
        "micro": datetime.datetime(2026, 12, 2, 1, 2, 3, 450, tzinfo=datetime.UTC),
        "naive": datetime.datetime(2026, 12, 2, 1, 2, 3),
        "date": datetime.date(2026, 12, 2),
        "uuid": uuid.UUID(int=7),
        "text": "é \u2028 \u2029 \x00 \t </script>",
        1: [None, True, 1.25, 10**15],
    }
    ours, drf = JSONRenderer(), DRFJSONRenderer()
    assert ours.render(data) == drf.render(data)
    assert ours.render(None) == b""
    pretty = "application/json; indent=2"
    assert ours.render(data, pretty) == drf.render(data, pretty)
