"""Django settings: one module, every value from `config.env.Env` (environment + secrets).

DJANGO_ENV=production (the default) refuses to start with an unsafe value and passes
`manage.py check --deploy`; DJANGO_ENV=development relaxes HTTPS-only settings for runserver.
"""

from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from config.env import Env

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
PRODUCTION = env.production
DEBUG = env.debug

if PRODUCTION and (problems := env.unsafe_production_settings()):
    raise ImproperlyConfigured(
        "Refusing to start in production mode (DJANGO_ENV=production):\n  - "
        + "\n  - ".join(problems)
    )

# A fixed key is acceptable only where nothing is secret: development and the image build.
SECRET_KEY = (
    env.django_secret_key or "django-insecure-development-only-key-never-used-in-production"
)
ALLOWED_HOSTS = env.split(env.django_allowed_hosts) or (
    [] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]"]
)
# Same-origin requests pass Django's Origin check without this (nginx forwards the Host with
# its port); list other origins, with scheme, only if pages on them post to the API.
CSRF_TRUSTED_ORIGINS = env.split(env.django_csrf_trusted_origins)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Before the third-party apps: its templates override theirs (the Swagger page).
    "core",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Your apps: `make startapp APP=name` adds each new one below this line.
    "board",  # example
]

MIDDLEWARE = [
    # First: the health endpoints answer before host validation and the HTTPS redirect, so
    # the container healthcheck (plain HTTP, Host 127.0.0.1:8000) works whatever the hosts.
    "core.middleware.HealthCheckMiddleware",
    "core.middleware.RequestIDMiddleware",
    "core.metrics.MetricsMiddleware",  # after the probes: they are not traffic
    "django.middleware.security.SecurityMiddleware",
    # Fallback for runserver and direct hits; behind nginx, /static/ never reaches Django.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # An ETag (hash of the body) on every GET that has none, and 304 to If-None-Match: a client
    # polling a list it already has gets no body. Views with their own ETag keep it.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,  # with DEBUG off Django uses the cached loader
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.pages.site",
            ],
        },
    },
]

# --- Postgres through psycopg 3 -------------------------------------------------------------
# Django's own pool (psycopg_pool), one per Gunicorn worker process, sized to its threads:
# a gthread worker's threads share a few warm connections instead of each opening its own,
# and the pool checks a connection before handing it out (CONN_HEALTH_CHECKS). The pool
# needs CONN_MAX_AGE = 0. Total connections = replicas x workers x max_size: keep it below
# Postgres' max_connections (100).
_threads = int(env.gunicorn_threads) if env.gunicorn_threads.strip() else 4
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": env.database_host,
        "PORT": env.database_port,
        "NAME": env.database_name,
        "USER": env.database_user,
        "PASSWORD": env.postgres_password,
        "CONN_MAX_AGE": 0 if env.database_pool else 60,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "connect_timeout": 5,
            **(
                {
                    "pool": {
                        "min_size": 1,
                        "max_size": env.database_pool_max or _threads,
                        # Wait at most this long for a free connection, then fail the request
                        # (503-worthy) rather than queueing until Gunicorn's timeout.
                        "timeout": 10,
                        "max_idle": 300,
                    }
                }
                if env.database_pool
                else {}
            ),
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache and sessions (DB 1), events and channel layer (DB 0) ---------------------
CACHES = {
    "default": {
        # Django's RedisCache; a Redis outage reads as a miss instead of an error (core/cache.py).
        "BACKEND": "core.cache.TolerantRedisCache",
        "LOCATION": env.cache_url,
        "KEY_PREFIX": "wsgi",
        # Key names carry a hash, never a session id (core/cache.py).
        "KEY_FUNCTION": "core.cache.hashed_key",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 2},
    }
}
# Sessions are read from Redis and kept in Postgres (cached_db): a request costs one Redis GET,
# and a Redis outage logs nobody out (the session comes from Postgres, see core/cache.py).
# Expired rows: `manage.py clearsessions` (e.g. daily).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_COOKIE_AGE = 14 * 24 * 3600

REDIS_URL = env.redis_url
EVENT_STREAM_MAXLEN = env.event_stream_maxlen
# Live events go to `<prefix>__group__<topic>` in channels_redis' wire format (core/events.py).
EVENT_CHANNEL_PREFIX = env.event_channel_prefix

REALTIME_TOKEN_KEY = env.realtime_token_key or "development-only-realtime-token-key-0123"
REALTIME_TOKEN_TTL = env.realtime_token_ttl
ATTACHMENT_MAX_BYTES = env.attachment_max_bytes
# Non-file request bodies above this answer 413 (files are limited by ATTACHMENT_MAX_BYTES).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files -----------------------------------------------------------------
# Collected at image build into STATIC_ROOT (hashed names + .gz/.br); `compose/migrate`
# copies them into the volume nginx serves at /static/.
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path("/srv/media") if PRODUCTION else BASE_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Pages reference hashed names only (the manifest), so the unhashed copies are dead weight.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
FILE_UPLOAD_PERMISSIONS = 0o644  # nginx (another uid) reads the media volume
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o755

# --- Behind nginx ---------------------------------------------------------------------------
# HTTPS detection has one owner: Gunicorn. It sets wsgi.url_scheme from X-Forwarded-Proto
# only when the peer is in FORWARDED_ALLOW_IPS (nginx's backend network), and Django reads
# wsgi.url_scheme. SECURE_PROXY_SSL_HEADER is left unset on purpose: Django would read the
# raw header, which Gunicorn passes through from any peer, trusted or not.
SECURE_PROXY_SSL_HEADER = None
USE_X_FORWARDED_HOST = False  # nginx passes the client's Host (with port) as Host
SECURE_SSL_REDIRECT = PRODUCTION
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# The site's JS reads the CSRF cookie to send X-CSRFToken (as Django documents).
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# HSTS has one owner, nginx (it adds the header to every response, static files included).
# Django adding it too would send it twice, so SECURE_HSTS_SECONDS stays 0 and the checks
# that ask for it are silenced here on purpose.
SECURE_HSTS_SECONDS = 0
SILENCED_SYSTEM_CHECKS = ["security.W004"]

# --- API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.auth.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON only: a form post (or any other type) gets 415, which also keeps cross-site
    # HTML forms from reaching the API without a CORS preflight.
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.JSONRenderer"],  # DRF's output, by orjson
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PageNumberPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "core.filters.FilterBackend",  # django-filter's, skipped when unused
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Pykit API",
    "DESCRIPTION": "The REST API of the kit's Django service.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # assets from our own /static/, allowed by the CSP
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# The /status page reads its numbers here (the `monitoring` profile's Prometheus).
PROMETHEUS_URL = env.prometheus_url
LOGIN_URL = "/"  # core's home page is the login form
SITE_NAME = "Pykit"  # the name pages and the header show (`make init` renames it)
CSRF_FAILURE_VIEW = "core.errors.csrf_failure"  # JSON under /api/

# --- Logging: one JSON object per line on stdout, with nginx's request id -----------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIDFilter"}},
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stdout"], "level": env.django_log_level},
    "loggers": {
        # Gunicorn logs the requests; Django's per-request 4xx warnings would double them.
        "django.request": {"level": "ERROR"},
    },
}
