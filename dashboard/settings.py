"""Aisle Keys settings: configured only through environment variables (django-environ).

Every variable is listed in `.env.example`. Safe defaults: DEBUG is off unless set, and outside
development (DEBUG off) there is no default SECRET_KEY, FIELD_ENCRYPTION_KEYS or AUDIT_HMAC_KEY:
start-up stops with ImproperlyConfigured naming the missing variable.
"""

from __future__ import annotations

import math
import re
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# django-environ's spellings, but anything else is an error rather than a silent "false".
_TRUE, _FALSE = {"1", "true", "yes", "y", "on", "ok"}, {"0", "false", "no", "n", "off"}


def _flag(name: str, default: bool) -> bool:
    """true/false (also 1/0, yes/no, on/off); anything else stops start-up, naming `name`."""
    raw = env.str(name, default="").strip().lower()
    if raw in _TRUE or raw in _FALSE:
        return raw in _TRUE
    if not raw:
        return default
    raise ImproperlyConfigured(f"{name} must be true or false.")


def _number(name: str, default: float, *, kind: type = int, minimum: float = 0,
            maximum: float | None = None) -> Any:
    raw = env.str(name, default="").strip()
    if not raw:
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        value = None
    # float() also reads "nan" and "inf", which pass every comparison below or none: refused.
    if (value is None or not math.isfinite(value) or value < minimum
            or (maximum is not None and value > maximum)):
        what = "whole number" if kind is int else "number"
        most = f" and at most {maximum}" if maximum is not None else ""
        raise ImproperlyConfigured(f"{name} must be a {what} of at least {minimum}{most}.")
    return value


def _list(name: str, default: list[str]) -> list[str]:
    """A comma-separated list; spaces around the items are ignored ("a.com, b.com")."""
    return [item.strip() for item in env.list(name, default=default) if item.strip()]


# Real environment variables win over the file (read_env only sets what is unset).
# DJANGO_READ_DOT_ENV=false ignores the file: the start-up tests need a clean environment even
# on a developer's machine with a .env, and a container may want its environment only.
if _flag("DJANGO_READ_DOT_ENV", True) and (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = _flag("DEBUG", False)


def _required(name: str, *, dev_default: str | None = None) -> str:
    value = env.str(name, default="") or ""
    if value.strip():
        return value.strip()
    if DEBUG and dev_default is not None:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. Set it in the environment or in .env "
        "(`make run` writes a development .env with fresh keys)."
    )


_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(text: str) -> int:
    """"90", "90s", "15m", "24h" or "7d" in seconds; ValueError if it is not written like that."""
    match = re.fullmatch(r"(\d+)\s*([smhd]?)", text.strip().lower(), flags=re.ASCII)
    if not match:
        raise ValueError(text)
    # More digits than any bound has: out of range, without int() of a string of any length.
    digits = match.group(1).lstrip("0") or "0"
    if len(digits) > 12:
        return 10**13
    return int(digits) * _UNIT_SECONDS[match.group(2)]


def _duration(name: str, default: str, *, minimum: str = "1m", maximum: str) -> timedelta:
    """A duration setting (plain numbers are seconds), from `minimum` to `maximum`. Zero would
    switch its rule off in a way nobody notices (a promotion guard that nothing passes, a
    session that ends as it starts, a lockout without a pause), and a huge one cannot even be
    added to the current time (an OverflowError at start-up, or a 500 at every sign-in once the
    session's expiry date is computed)."""
    try:
        seconds: int | None = _seconds(env.str(name, default=default))
    except ValueError:
        seconds = None
    if seconds is None or not _seconds(minimum) <= seconds <= _seconds(maximum):
        raise ImproperlyConfigured(f"{name} must be a duration from {minimum} to {maximum}, "
                                   "like 3600, 90m, 24h or 7d.")
    return timedelta(seconds=seconds)


def _accounts_url(name: str, default: str) -> str:
    # The client's own rule, at start-up: a URL it would refuse at every check (user info, a
    # query string, a bad port) stops the process instead, naming the variable.
    from onboarding.iqmetrix_wire import checked_base_url

    try:
        return checked_base_url(env.str(name, default=default))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


# An insecure key is acceptable only for a developer's own machine, never with DEBUG off.
SECRET_KEY = _required("SECRET_KEY", dev_default="django-insecure-development-only")
FIELD_ENCRYPTION_KEYS = _required("FIELD_ENCRYPTION_KEYS")
AUDIT_HMAC_KEY = _required("AUDIT_HMAC_KEY")
if not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5
                  or SECRET_KEY.startswith("django-insecure-")):
    # The same bar as `check --deploy` (security.W009), enforced at start-up.
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters.")

# Fail at start-up, naming the variable, rather than on the first encrypted read.
from onboarding.crypto import KeyConfigurationError, parse_keys  # noqa: E402

try:
    parse_keys(FIELD_ENCRYPTION_KEYS)
except KeyConfigurationError as exc:
    raise ImproperlyConfigured(str(exc)) from None
if len(AUDIT_HMAC_KEY) < 32:
    raise ImproperlyConfigured("AUDIT_HMAC_KEY must be at least 32 characters of random text.")

ALLOWED_HOSTS = _list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "onboarding",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "dashboard.middleware.SessionLifetimeMiddleware",
    "dashboard.middleware.ForcePasswordChangeMiddleware",
    # Django's LoginRequiredMiddleware, answering htmx with HX-Redirect and naming expiry.
    "dashboard.middleware.SignInRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "dashboard.middleware.NoStoreMiddleware",
    # Inside CSP and no-store, so the page it renders for a refused GET gets their headers.
    "dashboard.middleware.MethodNotAllowedPageMiddleware",
    # Axes last, as its documentation asks, so it sees the outcome of authentication.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
WSGI_APPLICATION = "dashboard.wsgi.application"
ASGI_APPLICATION = "dashboard.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
    # Jinja2 renders the one template a page repeats many times: the overview's compact cells
    # (25 integrations by 2 environments a page). It compiles templates to Python functions;
    # Django's engine interprets a node tree and spent two thirds of the overview's time on them.
    # Everything else stays in Django templates (the engine tried first for a name).
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "dashboard.jinja_env.environment"},
    },
]


def _database(default: str) -> dict[str, Any]:
    # The message never repeats the URL: it may hold the database password (and so would
    # django-environ's warning about an unknown scheme, hence silenced).
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = env.db("DATABASE_URL", default=default)
    except (ValueError, KeyError, ImproperlyConfigured):
        config = {}
    if config.get("ENGINE") not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
        raise ImproperlyConfigured("DATABASE_URL must look like sqlite:///PATH or "
                                   "postgres://USER:PASSWORD@HOST:5432/NAME.")
    return config


DATABASES = {"default": _database(f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so version numbers and the audit
    # chain are serialised on SQLite just as select_for_update serialises them on PostgreSQL.
    # WAL with synchronous=NORMAL: a commit appends to the -wal file without waiting for the disk
    # (the rollback journal syncs several times per commit), and readers never wait for the
    # writer. Commits survive a crash of the process; an OS crash or power loss may lose the last
    # few commits but never corrupts the file. SQLite is the development and demo database;
    # production runs on PostgreSQL. (An in-memory test database answers "memory" and carries on.)
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20,
         "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", _number("CONN_MAX_AGE", 60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    if _flag("DATABASE_PREPARED_STATEMENTS", True):
        # Statements the dashboard sends on every page (permissions, the overview's packages)
        # take PostgreSQL longer to plan than to run: psycopg prepares a statement once a
        # connection has sent it five times, so it is planned once per connection instead.
        # Server-side binding is what lets psycopg prepare. Off (false) behind a pooler in
        # transaction mode that cannot keep prepared statements (PgBouncer before 1.21).
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            {"server_side_binding": True, "prepare_threshold": 5})

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# The overview's rendered rows and pages (dashboard/overview_page.py), under keys made of what
# they show, so nothing is ever stale. Per process by default (at most 300 renderings, Django's
# default, of 60 to 90 kB each): each gunicorn worker renders a page once per change. CACHE_URL
# (redis://…, pymemcache://…) shares one cache between the workers. It holds no secret: no
# credential, token or CSRF token goes into a rendering.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://aislekeys")}

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, reading a user's own and group permissions in one query (a
    # session signed in under the previous backend's name signs in again, once).
    "onboarding.backends.OneQueryModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

# Lockout after repeated failures, with a cool-off rather than a permanent lock.
AXES_FAILURE_LIMIT = _number("AXES_FAILURE_LIMIT", 5, minimum=1)
# At most 30 days: a cool-off, not a permanent lock (an administrator unlocks with axes_reset).
AXES_COOLOFF_TIME = _duration("AXES_COOLOFF", "15m", maximum="30d")
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False

# Sessions: idle timeout (renewed on every request) and an absolute lifetime (middleware).
# At most 30 days idle and a year in all: a session is a sign-in to Production credentials.
SESSION_IDLE_TIMEOUT = _duration("SESSION_IDLE_TIMEOUT", "30m", maximum="30d")
SESSION_MAX_AGE = _duration("SESSION_MAX_AGE", "12h", maximum="365d")
SESSION_COOKIE_AGE = int(SESSION_IDLE_TIMEOUT.total_seconds())
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True

# HTTPS turns on everything `check --deploy` asks for; behind a TLS-terminating proxy also set
# TRUST_X_FORWARDED_PROTO=true. On by default outside development, so a production that forgets
# it gets secure cookies and HSTS rather than quietly going without; HTTPS=false serves plain
# HTTP on purpose (`make serve` on loopback).
HTTPS = _flag("HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if _flag("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many reverse proxies of ours stand in front (nginx: 1). Behind one, REMOTE_ADDR is the
# proxy's address: the lockout would be per user name only (anyone could lock anyone out) and
# every audit event would name the proxy. 0 (the default) trusts no X-Forwarded-For entry.
TRUSTED_PROXY_COUNT = _number("TRUSTED_PROXY_COUNT", 0, maximum=5)
AXES_CLIENT_IP_CALLABLE = "onboarding.services.audit.client_ip"
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", default=[])
# A refused form says why in the site's words (templates/403_csrf.html), not Django's.
CSRF_FAILURE_VIEW = "dashboard.views.errors.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# No inline script or style anywhere: every script and stylesheet is a static file.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

LANGUAGE_CODE = "en-us"
# One way of writing a time everywhere, the admin included: "2026-12-04 19:15 UTC".
FORMAT_MODULE_PATH = ["dashboard.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC").strip() or "UTC"
try:
    ZoneInfo(TIME_ZONE)
except (ValueError, ZoneInfoNotFoundError):
    raise ImproperlyConfigured(
        "TIME_ZONE must be a zone name such as UTC or America/Regina."
    ) from None
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Served at the site's root, not under STATIC_URL: favicon.ico, which a browser asks for at
# /favicon.ico on every page that links none (the admin's), and which was a 404 there.
# collectstatic copies it under root/ too; base.html links that hashed, long-cached copy.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
}

# iQmetrix accounts hosts: deployment settings only, never editable in the UI.
IQMETRIX_ACCOUNTS_URLS = {
    "sandbox": _accounts_url("IQMETRIX_SANDBOX_ACCOUNTS_URL", "https://accountsrc.iqmetrix.net"),
    "production": _accounts_url("IQMETRIX_PRODUCTION_ACCOUNTS_URL", "https://accounts.iqmetrix.net"),
}
# At most a minute each: a check waits for them (twice, with /v1/me) inside a web request.
IQMETRIX_CONNECT_TIMEOUT = _number("IQMETRIX_CONNECT_TIMEOUT", 5.0, kind=float, minimum=0.1,
                                   maximum=60)
IQMETRIX_READ_TIMEOUT = _number("IQMETRIX_READ_TIMEOUT", 15.0, kind=float, minimum=0.1,
                                maximum=60)
IQMETRIX_FETCH_ME = _flag("IQMETRIX_FETCH_ME", True)

# At most a year: an older passing check says nothing about today's Sandbox credentials.
PROMOTION_MAX_CHECK_AGE = _duration("PROMOTION_MAX_CHECK_AGE", "24h", maximum="365d")
SUDO_MINUTES = _number("SUDO_MINUTES", 10, minimum=1)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").strip().upper() or "INFO"
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Request bodies carry secrets: never log them, and keep Django's request logger terse.
    "loggers": {"django.request": {"level": "ERROR"}},
}
