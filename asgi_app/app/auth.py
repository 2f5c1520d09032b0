"""The real-time token: a short-lived JWT that Django signs and this service verifies."""

import re
from dataclasses import dataclass

import jwt

TOPIC_RE = re.compile(r"^board\.([1-9][0-9]{0,18})$")
COOKIE = "rt_token"


class AuthError(Exception):
    """Missing, malformed, expired or wrongly signed token."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    boards: frozenset[int]
    expires_at: float

    def may_read(self, topic: str) -> bool:
        m = TOPIC_RE.match(topic)
        return bool(m) and int(m.group(1)) in self.boards


def token_from(headers, cookies) -> str | None:
    """`Authorization: Bearer` for programs, the HttpOnly cookie for browsers."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return cookies.get(COOKIE) or None


def verify(token: str | None, key: str) -> User:
    if not token:
        raise AuthError("authentication required")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["HS256"],  # never taken from the token's own header
            audience="realtime",
            issuer="wsgi",
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            leeway=5,
        )
        boards = frozenset(int(b) for b in claims.get("boards", []))
        return User(
            id=int(claims["sub"]),
            name=str(claims.get("name", "")),
            boards=boards,
            expires_at=float(claims["exp"]),
        )
    except jwt.ExpiredSignatureError as e:
        raise AuthError("token expired") from e
    except (jwt.InvalidTokenError, ValueError, TypeError) as e:
        raise AuthError("invalid token") from e
