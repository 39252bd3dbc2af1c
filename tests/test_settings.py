"""Start-up configuration: refuse to start without keys, name the variable, no traceback.

Each case runs `manage.py` in a child process with a clean environment (see
tests/manage_subprocess.py: no inherited keys, DJANGO_READ_DOT_ENV=false so a developer's .env
cannot leak in), because settings are read once per process.
"""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from onboarding.checks import check_keys
from tests.manage_subprocess import clean_env, key_entry, manage, production_keys

PRINT_SETTINGS = (
    "import json; from django.conf import settings as s; "
    "print(json.dumps({'DEBUG': s.DEBUG, 'ENGINE': s.DATABASES['default']['ENGINE'], "
    "'NAME': s.DATABASES['default']['NAME'], 'HOST': s.DATABASES['default']['HOST'], "
    "'SESSION_COOKIE_SECURE': s.SESSION_COOKIE_SECURE, 'HSTS': s.SECURE_HSTS_SECONDS, "
    "'OPTIONS': s.DATABASES['default'].get('OPTIONS', {}), "
    "'CACHE': s.CACHES['default']['BACKEND']}, default=str))"
)


def _settings_of(**env: str) -> dict:
    result = manage("shell", "-c", PRINT_SETTINGS, env=clean_env(**env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _assert_refuses_naming(result, variable: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "AUDIT_HMAC_KEY"])
def test_a_missing_key_stops_start_up_naming_the_variable(missing):
    keys = production_keys()
    del keys[missing]
    result = manage("check", env=clean_env(**keys))
    _assert_refuses_naming(result, missing)
    assert "is not set" in result.stderr


@pytest.mark.parametrize(
    "value",
    [
        "k1:c2hvcnQ=",  # valid base64, but 5 bytes
        "k1:not base64 at all!!",
        "no-key-id-separator",
        "bad id:" + key_entry().partition(":")[2],
        key_entry("same") + "," + key_entry("same"),
    ],
    ids=["short", "not-base64", "no-key-id", "bad-key-id", "duplicate-id"],
)
def test_a_malformed_encryption_key_names_field_encryption_keys(value):
    keys = {**production_keys(), "FIELD_ENCRYPTION_KEYS": value}
    result = manage("check", env=clean_env(**keys))
    _assert_refuses_naming(result, "FIELD_ENCRYPTION_KEYS")
    # The message describes the key; it never repeats it.
    key_material = value.partition(":")[2]
    if key_material:
        assert key_material not in result.stderr


def test_short_audit_and_signing_keys_are_refused_by_name():
    short_audit = manage("check",
                         env=clean_env(**{**production_keys(), "AUDIT_HMAC_KEY": "x" * 20}))
    _assert_refuses_naming(short_audit, "AUDIT_HMAC_KEY")
    short_secret = manage("check", env=clean_env(**{**production_keys(), "SECRET_KEY": "short"}))
    _assert_refuses_naming(short_secret, "SECRET_KEY")


def test_debug_is_off_unless_set():
    assert _settings_of(**production_keys())["DEBUG"] is False
    assert _settings_of(**production_keys(), DEBUG="true")["DEBUG"] is True


def test_https_settings_are_on_unless_debug_is_on_or_https_is_false():
    production = _settings_of(**production_keys())
    assert production["SESSION_COOKIE_SECURE"] and production["HSTS"] > 0
    plain = _settings_of(**production_keys(), HTTPS="false")
    assert not plain["SESSION_COOKIE_SECURE"] and plain["HSTS"] == 0
    development = _settings_of(**production_keys(), DEBUG="true")
    assert not development["SESSION_COOKIE_SECURE"]


def test_a_development_secret_key_is_only_allowed_with_debug_on():
    keys = production_keys()
    del keys["SECRET_KEY"]
    assert _settings_of(**keys, DEBUG="true")["DEBUG"] is True


def test_database_url_defaults_to_sqlite_and_accepts_postgres():
    default = _settings_of(**production_keys())
    assert default["ENGINE"] == "django.db.backends.sqlite3"
    assert default["NAME"].endswith("db.sqlite3")

    postgres = _settings_of(**production_keys(),
                            DATABASE_URL="postgres://aisle:pw@db.internal:5432/aislekeys")
    assert postgres["ENGINE"] == "django.db.backends.postgresql"
    assert (postgres["NAME"], postgres["HOST"]) == ("aislekeys", "db.internal")


def test_postgresql_prepares_repeated_statements_unless_turned_off():
    url = "postgres://aisle:pw@db.internal:5432/aislekeys"
    options = _settings_of(**production_keys(), DATABASE_URL=url)["OPTIONS"]
    assert options == {"server_side_binding": True, "prepare_threshold": 5}
    off = _settings_of(**production_keys(), DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="false")
    assert "server_side_binding" not in off["OPTIONS"]


@pytest.mark.django_db
def test_a_statement_sent_again_and_again_is_prepared_on_postgresql():
    from django.db import connection

    from onboarding.models import Integration

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    for _ in range(6):
        list(Integration.objects.filter(name="prepared-statement probe"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "onboarding_integration"' in sql for sql in prepared), prepared


def test_the_cache_is_per_process_unless_cache_url_names_one():
    assert _settings_of(**production_keys())["CACHE"].endswith("LocMemCache")
    shared = _settings_of(**production_keys(), CACHE_URL="redis://127.0.0.1:6379/1")
    assert shared["CACHE"] == "django.core.cache.backends.redis.RedisCache"


def test_an_accounts_url_pointing_at_plain_http_elsewhere_is_refused():
    result = manage("check", env=clean_env(
        **production_keys(), IQMETRIX_PRODUCTION_ACCOUNTS_URL="http://evil.example.com"))
    _assert_refuses_naming(result, "IQMETRIX_PRODUCTION_ACCOUNTS_URL")


def test_deploy_check_passes_with_production_settings():
    env = clean_env(**production_keys(), HTTPS="true", ALLOWED_HOSTS="keys.example.com")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_check_fails_without_the_https_settings():
    # The test above means something only if the deploy check does catch a weak setting.
    env = clean_env(**production_keys(), HTTPS="false", ALLOWED_HOSTS="keys.example.com")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("value", "words"),
    [("", "FIELD_ENCRYPTION_KEYS is not set"), ("k1:AAAA", "must be 32 bytes")],
)
def test_the_system_check_reports_a_missing_or_malformed_key(value, words):
    with override_settings(FIELD_ENCRYPTION_KEYS=value):
        errors = check_keys()
    assert [e.id for e in errors] == ["aislekeys.E001"]
    assert words in errors[0].msg


def test_the_system_check_reports_a_short_audit_key():
    with override_settings(AUDIT_HMAC_KEY="too-short"):
        errors = check_keys()
    assert [e.id for e in errors] == ["aislekeys.E002"]


def test_the_system_check_is_quiet_with_good_keys():
    assert check_keys() == []


def test_manage_check_runs_the_key_check():
    from django.core.checks.registry import registry
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    assert check_keys in registry.get_checks()
    with (override_settings(FIELD_ENCRYPTION_KEYS="k1:AAAA"),
          pytest.raises(SystemCheckError, match="FIELD_ENCRYPTION_KEYS")):
        call_command("check")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DEBUG", "maybe"),
        ("HTTPS", "yes please"),
        ("DATABASE_URL", "nonsense"),
        ("DATABASE_URL", "postgress://aisle:db-secret-pw@db.internal/aislekeys"),
        ("AXES_FAILURE_LIMIT", "five"),
        ("AXES_FAILURE_LIMIT", "0"),
        ("SUDO_MINUTES", "ten"),
        ("IQMETRIX_CONNECT_TIMEOUT", "fast"),
        ("IQMETRIX_CONNECT_TIMEOUT", "inf"),
        ("IQMETRIX_READ_TIMEOUT", "nan"),
        ("IQMETRIX_READ_TIMEOUT", "600"),
        ("IQMETRIX_SANDBOX_ACCOUNTS_URL", "https://user:db-secret-pw@accounts.example.com"),
        ("IQMETRIX_SANDBOX_ACCOUNTS_URL", "https://accounts.example.com/?x=1"),
        ("SESSION_MAX_AGE", "forever"),
        ("TIME_ZONE", "Mars/Olympus_Mons"),
        ("LOG_LEVEL", "loud"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(variable, value):
    result = manage("check", env=clean_env(**production_keys(), **{variable: value}))
    _assert_refuses_naming(result, variable)
    assert "db-secret-pw" not in result.stderr  # a database URL may carry a password


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SESSION_IDLE_TIMEOUT", "99999999999d"),  # was an OverflowError traceback
        ("SESSION_IDLE_TIMEOUT", "3000000d"),  # was accepted, then a 500 at every sign-in
        ("SESSION_IDLE_TIMEOUT", "0"),
        ("SESSION_IDLE_TIMEOUT", "31d"),
        ("SESSION_MAX_AGE", "0m"),
        ("SESSION_MAX_AGE", "366d"),
        ("AXES_COOLOFF", "0"),
        ("AXES_COOLOFF", "99999999999d"),
        ("PROMOTION_MAX_CHECK_AGE", "0"),
        ("PROMOTION_MAX_CHECK_AGE", "9" * 5000),  # more digits than int() reads from text
        ("PROMOTION_MAX_CHECK_AGE", "366d"),
    ],
)
def test_a_duration_out_of_its_range_stops_start_up_naming_the_variable(variable, value):
    result = manage("check", env=clean_env(**production_keys(), **{variable: value}))
    _assert_refuses_naming(result, variable)
    assert "must be a duration from" in result.stderr


def test_durations_at_their_bounds_are_accepted():
    result = manage("check", env=clean_env(
        **production_keys(), SESSION_IDLE_TIMEOUT="30d", SESSION_MAX_AGE="365d",
        AXES_COOLOFF="1m", PROMOTION_MAX_CHECK_AGE="8760h"))
    assert result.returncode == 0, result.stderr


def test_a_misspelt_prepared_statements_flag_stops_start_up():
    # Not quietly read as "false", which would turn statement preparation off.
    result = manage("check", env=clean_env(
        **production_keys(), DATABASE_URL="postgres://aisle:pw@db.internal:5432/aislekeys",
        DATABASE_PREPARED_STATEMENTS="maybe"))
    _assert_refuses_naming(result, "DATABASE_PREPARED_STATEMENTS")


def test_spaces_around_listed_hosts_and_origins_are_ignored():
    result = manage("shell", "-c", "from django.conf import settings as s; "
                    "print(s.ALLOWED_HOSTS, s.CSRF_TRUSTED_ORIGINS)", env=clean_env(
                        **production_keys(), ALLOWED_HOSTS="a.example.com, b.example.com ,",
                        CSRF_TRUSTED_ORIGINS="https://a.example.com, https://b.example.com"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "['a.example.com', 'b.example.com'] "
        "['https://a.example.com', 'https://b.example.com']")


def test_postgresql_url_spellings_are_accepted():
    for scheme in ("postgres", "postgresql", "pgsql"):
        settings = _settings_of(**production_keys(), DATABASE_URL=f"{scheme}://u@h:5432/n")
        assert settings["ENGINE"] == "django.db.backends.postgresql"
