import json

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from board.models import Board, Card  # example
from core import events
from core.breaker import redis_breaker

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def redis_db():
    """The tests' own Redis DB (14), empty before and after each test."""
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    assert client.connection_pool.connection_kwargs["db"] == 14
    client.flushdb()
    redis_breaker.reset()  # a test that made Redis "fail" must not leave it marked down
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def make_user(db):
    def make(username, **extra):
        return get_user_model().objects.create_user(username, password=PASSWORD, **extra)

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def client_for():
    """An API client with a real session (in Redis), CSRF enforced like a browser's."""

    def make(user=None):
        client = APIClient(enforce_csrf_checks=True)
        if user is not None:
            response = client.post(
                "/api/auth/login",
                {"username": user.username, "password": PASSWORD},
                format="json",
            )
            assert response.status_code == 200, response.content
            client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
        return client

    return make


@pytest.fixture
def as_alice(client_for, alice):
    return client_for(alice)


@pytest.fixture
def as_bob(client_for, bob):
    return client_for(bob)


# example-begin
@pytest.fixture
def board(alice):
    return Board.objects.create(name="Alice's board", owner=alice)


@pytest.fixture
def card(board):
    return Card.objects.create(board=board, title="First", column="todo", position=0)


# example-end
@pytest.fixture
def live_messages(redis_db):
    """Messages the channel layer publishes for a topic, as a real-time subscriber sees them."""
    pubsub = redis_db.pubsub()
    received = []

    def subscribe(topic):
        pubsub.subscribe(f"{settings.EVENT_CHANNEL_PREFIX}__group__{topic}")
        pubsub.get_message(timeout=1)  # the subscribe confirmation

        def collect(timeout=3.0):
            message = pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
            if message:
                received.append(json.loads(message["data"]))
            return received

        return collect

    yield subscribe
    pubsub.close()


@pytest.fixture
def reset_event_clients():
    """Forget the cached Redis clients, so a changed REDIS_URL takes effect (and is undone)."""
    events._client = None
    yield
    events._client = None
