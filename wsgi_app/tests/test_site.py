"""The site core owns: pages, sign-up, error pages in the site's look, the API root."""

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


def test_login_and_signup_pages_render(client):
    home = client.get("/")
    assert home.status_code == 200
    assert b'id="login"' in home.content
    assert b'href="/signup/"' in home.content
    assert b"/static/core/site." in home.content  # the site's stylesheet (hashed name)
    signup = client.get("/signup/")
    assert signup.status_code == 200
    assert b'id="signup"' in signup.content
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301
    assert icon["Location"].startswith("/static/core/favicon.")


def test_signup_creates_a_session(client_for):
    client = client_for()
    response = client.post(
        "/api/auth/signup",
        {"username": "newcomer", "password": "a long enough passphrase"},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["username"] == "newcomer"
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert client.get("/api/auth/me").json()["username"] == "newcomer"
    assert (
        get_user_model().objects.get(username="newcomer").check_password("a long enough passphrase")
    )


def test_signup_refuses_weak_passwords_and_taken_names(client_for, alice):
    weak = client_for().post(
        "/api/auth/signup", {"username": "weakling", "password": "12345678"}, format="json"
    )
    assert weak.status_code == 422
    assert "password" in weak.json()["error"]["fields"]
    taken = client_for().post(
        "/api/auth/signup",
        {"username": "alice", "password": "a long enough passphrase"},
        format="json",
    )
    assert taken.status_code == 422
    assert "username" in taken.json()["error"]["fields"]
    assert not get_user_model().objects.filter(username="weakling").exists()


def test_error_pages_are_in_the_sites_look(client):
    page = client.get("/no-such-page/")
    assert page.status_code == 404
    assert page["Content-Type"].startswith("text/html")
    assert b"<h1>404</h1>" in page.content
    assert b"/static/core/site." in page.content  # the site's stylesheet, not Django's page
    assert client.get("/api/no-such-thing").json()["error"]["code"] == "not_found"


def test_server_error_page_is_styled_html_or_json(rf):
    from core.errors import handler500

    html = handler500(rf.get("/somewhere/"))
    assert html.status_code == 500
    assert b"<h1>500</h1>" in html.content
    assert b"/static/core/site." in html.content
    api = handler500(rf.get("/api/somewhere"))
    assert api.status_code == 500
    assert api["Content-Type"] == "application/json"


def test_api_root_lists_the_endpoints(client):
    response = client.get("/api/")
    assert response.status_code == 200
    links = response.json()
    assert links["login"] == "http://testserver/api/auth/login"
    assert links["docs"] == "http://testserver/api/docs"
    assert links["openapi"] == "http://testserver/api/openapi.json"
    assert all(url.startswith("http://testserver/api/") for url in links.values())
