"""Login, logout, me, CSRF, the real-time token, and the shape of errors."""

import jwt
import pytest
from django.conf import settings

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_starts_a_session_and_sets_the_csrf_cookie(client_for, alice):
    client = client_for()
    response = client.post(
        "/api/auth/login", {"username": "alice", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"id": alice.pk, "username": "alice", "is_staff": False}
    assert response.cookies["sessionid"]["httponly"]
    assert response.cookies["csrftoken"].value
    assert client.get("/api/auth/me").json()["username"] == "alice"


def test_wrong_password_is_401_with_a_json_error(client_for, alice):
    response = client_for().post(
        "/api/auth/login", {"username": "alice", "password": "nope"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"
    assert "sessionid" not in response.cookies


def test_me_without_session_is_401_and_hands_out_a_csrf_cookie(client_for):
    response = client_for().get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.cookies["csrftoken"].value


def test_logout_ends_the_session(as_alice):
    assert as_alice.post("/api/auth/logout").status_code == 204
    assert as_alice.get("/api/auth/me").status_code == 401


def test_unsafe_method_without_csrf_header_is_refused(as_alice):
    as_alice.credentials()  # drop the X-CSRFToken header; the cookie stays
    response = as_alice.post("/api/realtime/token")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf_failed"


def test_login_form_post_is_415(client_for, alice):
    response = client_for().post(
        "/api/auth/login", {"username": "alice", "password": PASSWORD}
    )  # multipart form, as a cross-site HTML form would send
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_malformed_json_is_400(client_for):
    response = client_for().post(
        "/api/auth/login", data='{"username": "alice",', content_type="application/json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "malformed_request"
    assert set(body["error"]) == {"code", "message", "fields"}


def test_missing_fields_are_422_with_field_messages(client_for):
    response = client_for().post("/api/auth/login", {"username": "alice"}, format="json")
    assert response.status_code == 422
    assert "password" in response.json()["error"]["fields"]


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_realtime_token_says_who_not_what(as_bob, bob):
    response = as_bob.post("/api/realtime/token")
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == settings.REALTIME_TOKEN_TTL
    claims = jwt.decode(
        body["token"], settings.REALTIME_TOKEN_KEY, algorithms=["HS256"], audience="realtime"
    )
    assert claims["sub"] == str(bob.pk)
    assert claims["name"] == "bob"
    assert claims["iss"] == "wsgi"
    # What the user may read is asked per subscription, never carried in the token.
    assert set(claims) == {"sub", "name", "aud", "iss", "iat", "exp"}
    assert claims["exp"] - claims["iat"] == settings.REALTIME_TOKEN_TTL
    cookie = response.cookies["rt_token"]
    assert cookie.value == body["token"]
    assert cookie["path"] == "/rt/"
    assert cookie["httponly"]
    assert cookie["samesite"] == "Strict"


def test_realtime_token_needs_a_session(client_for):
    assert client_for().post("/api/realtime/token").status_code == 401
