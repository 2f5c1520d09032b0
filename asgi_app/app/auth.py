"""The real-time token: a short-lived JWT that Django signs and this service verifies.

It says who the user is, nothing about what they may read (that is asked per subscription,
app/access.py), so its size never grows with the user's memberships.
"""

from dataclasses import dataclass

import jwt

COOKIE = "rt_token"


class AuthError(Exception):
    """Missing, malformed, expired or wrongly signed token."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    expires_at: float


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
        return User(
            id=int(claims["sub"]),
            name=str(claims.get("name", "")),
            expires_at=float(claims["exp"]),
        )
    except jwt.ExpiredSignatureError as e:
        raise AuthError("token expired") from e
    except (jwt.InvalidTokenError, ValueError, TypeError) as e:
        raise AuthError("invalid token") from e
