"""The OpenAPI document lists the error statuses each operation answers (core.schema), in
the one error shape; schemathesis in `make test` checks the running API against it."""

import pytest


@pytest.fixture
def paths(client):
    return client.get("/api/openapi.json").json()["paths"]


def statuses(paths, path: str, method: str) -> set[str]:
    return set(paths[path][method]["responses"])


def test_every_error_response_has_the_error_shape(paths):
    for path, ops in paths.items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path)


def test_errors_follow_what_the_operation_has(paths):
    # Login needed; a query parameter that can be invalid.
    assert statuses(paths, "/api/io-wait", "get") == {"200", "401", "403", "422"}
    assert statuses(paths, "/api/stream-demo", "get") == {"200", "401", "403", "422"}
    # Anyone may log in, with a body that can be wrong; 401 is the wrong password.
    login = statuses(paths, "/api/auth/login", "post")
    assert {"400", "401", "403", "413", "415", "422"} <= login
    # A path id, an If-Match header.  # example
    card = statuses(paths, "/api/cards/{id}/", "patch")  # example
    assert {"401", "403", "404", "412", "422"} <= card  # example
    assert "412" not in statuses(paths, "/api/boards/{id}/", "get")  # example
