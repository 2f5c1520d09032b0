"""The API's root, auth (session + CSRF, sign-up), the real-time token, the I/O-wait and
streaming demos."""

import json
import logging
import secrets
import time

import jwt
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import StreamingHttpResponse
from django.middleware.csrf import get_token
from django.urls import NoReverseMatch, get_resolver, reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core import events, realtime
from core.logging import request_id

log = logging.getLogger(__name__)

USER_SCHEMA = inline_serializer(
    "User",
    {
        "id": serializers.IntegerField(),
        "username": serializers.CharField(),
        "is_staff": serializers.BooleanField(),
    },
)


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class SignupSerializer(LoginSerializer):
    def validate_username(self, value):
        field = get_user_model()._meta.get_field("username")
        try:
            field.run_validators(value)
        except DjangoValidationError as e:
            raise serializers.ValidationError(e.messages) from e
        if get_user_model().objects.filter(username=value).exists():
            raise serializers.ValidationError("This username is taken; choose another.")
        return value

    def validate(self, attrs):
        user = get_user_model()(username=attrs["username"])
        try:
            validate_password(attrs["password"], user)
        except DjangoValidationError as e:
            raise serializers.ValidationError({"password": e.messages}) from e
        return attrs


def user_data(user) -> dict:
    return {"id": user.pk, "username": user.get_username(), "is_staff": user.is_staff}


@extend_schema(request=LoginSerializer, responses={200: USER_SCHEMA})
@api_view(["POST"])
@permission_classes([AllowAny])
def login_view(request):
    """Start a session. No CSRF token is needed yet (the client has none before logging in);
    the JSON-only parser keeps cross-site forms out, and the response sets the CSRF cookie."""
    body = LoginSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    user = authenticate(request, **body.validated_data)
    if user is None:
        raise exceptions.AuthenticationFailed("Wrong username or password.", "invalid_credentials")
    login(request, user)  # new session key and new CSRF secret: no fixation
    get_token(request)  # make CsrfViewMiddleware send the rotated cookie
    return Response(user_data(user))


@extend_schema(request=SignupSerializer, responses={201: USER_SCHEMA})
@api_view(["POST"])
@permission_classes([AllowAny])
def signup_view(request):
    """Create an account and start its session (Django's password validators apply)."""
    body = SignupSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    user = get_user_model().objects.create_user(**body.validated_data)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    get_token(request)
    return Response(user_data(user), status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses={204: None})
@api_view(["POST"])
def logout_view(request):
    logout(request)
    return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema(responses={200: USER_SCHEMA})
@api_view(["GET"])
@permission_classes([AllowAny])
def me_view(request):
    """The current user, or 401. Also hands out the CSRF cookie to a fresh client."""
    get_token(request)
    if not request.user.is_authenticated:
        raise exceptions.NotAuthenticated()
    return Response(user_data(request.user))


me_view = ensure_csrf_cookie(me_view)


def make_realtime_token(user) -> tuple[str, int]:
    """Who the user is, never what they may read: the real-time service asks the access sets
    per subscription (core/realtime.py), so the token stays small whatever the user joins."""
    now = int(time.time())
    ttl = settings.REALTIME_TOKEN_TTL
    claims = {
        "sub": str(user.pk),
        "name": user.get_username(),
        "aud": "realtime",
        "iss": "wsgi",
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, settings.REALTIME_TOKEN_KEY, algorithm="HS256"), ttl


@extend_schema(
    request=None,
    responses={
        200: inline_serializer(
            "RealtimeToken",
            {"token": serializers.CharField(), "expires_in": serializers.IntegerField()},
        )
    },
)
@api_view(["POST"])
def realtime_token_view(request):
    """A short-lived token for /rt/: in the body for non-browser clients, and as an HttpOnly
    cookie scoped to /rt/ so the browser never puts it in a URL."""
    realtime.ensure_ready()  # Redis lost the access sets: rebuild them before they are asked
    token, ttl = make_realtime_token(request.user)
    response = Response({"token": token, "expires_in": ttl})
    response.set_cookie(
        "rt_token",
        token,
        max_age=ttl,
        path="/rt/",
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Strict",
    )
    return response


class IoWaitQuery(serializers.Serializer):
    # A wait holds a Gunicorn thread: logged-in users only, and at most a second, so a burst
    # of these cannot occupy every thread for long (the benchmarks use 100 ms).
    ms = serializers.IntegerField(min_value=0, max_value=1_000, default=100)


@extend_schema(
    parameters=[IoWaitQuery],
    responses={200: inline_serializer("IoWait", {"waited_ms": serializers.FloatField()})},
)
@api_view(["GET"])
def io_wait_view(request):
    """Hold a thread on I/O for `ms` (a Redis BLPOP on a key nobody pushes to), so load tests
    can compare a blocking wait in a Gunicorn thread with the same wait in the ASGI service.
    Login required."""
    query = IoWaitQuery(data=request.query_params)
    query.is_valid(raise_exception=True)
    ms = query.validated_data["ms"]
    started = time.perf_counter()
    if ms:
        # BLPOP's timeout 0 means "forever", so 0 ms skips the call.
        events.blocking_redis_client().blpop(f"iowait:{secrets.token_hex(8)}", timeout=ms / 1000)
    return Response({"waited_ms": round((time.perf_counter() - started) * 1000, 1)})


class StreamQuery(serializers.Serializer):
    # A stream holds a Gunicorn thread from its first token to its last: at most 20 s.
    tokens = serializers.IntegerField(min_value=1, max_value=200, default=100)
    ms = serializers.IntegerField(min_value=0, max_value=100, default=100)


def stream_frame(i: int) -> bytes:
    """One token as a Server-Sent Event, the shape the ASGI side (/rt/stream-demo) sends too."""
    return f"data: {json.dumps({'i': i, 'text': f'token{i} '})}\n\n".encode()


def token_stream(count: int, interval: float, rid: str):
    produced, complete = 0, False
    try:
        for i in range(count):
            if i:
                time.sleep(interval)  # the work between two tokens (a model's next step)
            produced += 1
            yield stream_frame(i)
        complete = True
        yield b"event: end\ndata: {}\n\n"
    finally:
        # A client gone mid-stream: Gunicorn's next write fails and it closes this generator
        # (GeneratorExit at the yield), so no token is made for nobody.
        log.info(
            "stream ended",
            extra={"request_id": rid, "fields": {"tokens": produced, "complete": complete}},
        )


class AnyAccept(BaseContentNegotiation):
    """JSON errors whatever the client accepts: an EventSource asks for text/event-stream only,
    which DRF would answer with 406 before the view runs."""

    def select_parser(self, request, parsers):
        return parsers[0]

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class StreamDemoView(APIView):
    content_negotiation_class = AnyAccept

    @extend_schema(
        parameters=[StreamQuery],
        responses={(200, "text/event-stream"): {"type": "string"}},
    )
    def get(self, request):
        """`tokens` Server-Sent Events `ms` apart, like a model's answer streamed token by
        token (the sync side of the streaming comparison; /rt/stream-demo is the async one).
        Each holds a Gunicorn thread until its end. Login required."""
        query = StreamQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        response = StreamingHttpResponse(
            token_stream(q["tokens"], q["ms"] / 1000, request_id.get()),
            content_type="text/event-stream",
        )
        response["Cache-Control"] = "no-store"
        return response


@extend_schema(responses={200: {"type": "object", "additionalProperties": {"type": "string"}}})
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request):
    """Every API endpoint that takes no path parameter, by name, as absolute URLs: a map for
    clients (built from the Host nginx passes on, like every absolute URL Django makes)."""
    links = {}
    for name in get_resolver().reverse_dict:
        if not isinstance(name, str):
            continue
        try:
            path = reverse(name)
        except NoReverseMatch:
            continue  # needs parameters
        if path.startswith("/api/") and path != "/api/":
            links[name] = request.build_absolute_uri(path)
    return Response(dict(sorted(links.items())))
