"""The encrypted field: AES-GCM at rest, bound to table, column and row, failing closed."""

from __future__ import annotations

import base64
import io

import pytest
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from onboarding.crypto import (
    DecryptionError,
    KeyConfigurationError,
    decrypt,
    encrypt,
    key_id_of,
    parse_keys,
)
from onboarding.models import ConnectivityCheck, OnboardingPackage, PackageVersion
from onboarding.services.packages import UNREADABLE
from tests import manage_subprocess
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, onboard
from tests.manage_subprocess import key_entry, manage

sqlite_child = manage_subprocess.sqlite_child
_migrated_template = manage_subprocess._migrated_template

TABLE = PackageVersion._meta.db_table
CLIENT_ID = "client-abcdef123456"
USERNAME = "api.user@example.com"


def _raw(version: PackageVersion, column: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {TABLE} WHERE id = %s", [version.pk])  # noqa: S608
        return cursor.fetchone()[0]


def _set_raw(version: PackageVersion, column: str, value: str | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET {column} = %s WHERE id = %s",  # noqa: S608
                       [value, version.pk])


def _reload(version: PackageVersion) -> PackageVersion:
    return PackageVersion.objects.get(pk=version.pk)


# --- nothing readable at rest -----------------------------------------------------------------

def test_no_plaintext_credential_is_in_the_sqlite_file(sqlite_child):
    path, env = sqlite_child
    env = {**env, "IQMETRIX_CLIENT_SECRET": KNOWN_SECRET, "IQMETRIX_PASSWORD": KNOWN_PASSWORD}
    result = manage("onboard", "Acme POS", "--environment", "sandbox", "--client-id", CLIENT_ID,
                    "--username", USERNAME, env=env)
    assert result.returncode == 0, result.stderr

    data = path.read_bytes()
    # WAL mode (header bytes 18-19 are 2): a commit lands in the -wal file first and reaches the
    # main file at a checkpoint (at the latest when the last connection closes), so read both.
    assert data[18:20] == b"\x02\x02", "the SQLite file is not in WAL mode"
    for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")):
        if sidecar.exists():
            data += sidecar.read_bytes()
    assert b"Acme POS" in data  # the row is really in what was read
    assert data.count(b"v1:k1:") >= 4  # four sealed credentials
    for plain in (KNOWN_SECRET, KNOWN_PASSWORD, CLIENT_ID, USERNAME):
        assert plain.encode() not in data, plain
        assert plain.encode("utf-16-le") not in data, plain


@pytest.mark.django_db
def test_columns_hold_only_sealed_text():
    version = onboard(client_id=CLIENT_ID, username=USERNAME)
    for column, plain in [("client_id", CLIENT_ID), ("client_secret", KNOWN_SECRET),
                          ("username", USERNAME), ("password", KNOWN_PASSWORD)]:
        raw = _raw(version, column)
        assert raw.startswith("v1:test1:")
        assert plain not in raw


@pytest.mark.django_db
def test_no_plaintext_credential_is_in_any_postgresql_row():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: run with DATABASE_URL=postgres://...")
    onboard(client_id=CLIENT_ID, username=USERNAME)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT client_secret, password FROM {TABLE}")  # noqa: S608
        columns = cursor.fetchall()
        # Every row of every table of the app, as PostgreSQL's text form of the whole row.
        rows = []
        for model in (PackageVersion, OnboardingPackage):
            cursor.execute(f"SELECT t::text FROM {model._meta.db_table} t")  # noqa: S608
            rows += [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT t::text FROM onboarding_auditevent t")
        rows += [r[0] for r in cursor.fetchall()]
    assert columns and all(v.startswith("v1:") for pair in columns for v in pair)
    text = "\n".join(rows)
    assert "Acme POS" in text or "acme-pos" in text
    for plain in (KNOWN_SECRET, KNOWN_PASSWORD, CLIENT_ID, USERNAME):
        assert plain not in text
        assert all(plain not in v for pair in columns for v in pair)


# --- bound to its place -----------------------------------------------------------------------

@pytest.mark.django_db
def test_a_ciphertext_copied_into_another_row_fails_to_decrypt():
    first = onboard("Acme POS")
    second = onboard("Other POS", client_secret="another-secret-value")
    _set_raw(second, "client_secret", _raw(first, "client_secret"))

    with pytest.raises(DecryptionError):
        _ = _reload(second).client_secret
    assert _reload(first).client_secret == KNOWN_SECRET


@pytest.mark.django_db
def test_a_ciphertext_copied_into_another_column_of_the_same_row_fails_to_decrypt():
    version = onboard()
    _set_raw(version, "password", _raw(version, "client_secret"))

    reloaded = _reload(version)
    with pytest.raises(DecryptionError):
        _ = reloaded.password
    assert reloaded.client_secret == KNOWN_SECRET


@pytest.mark.django_db
def test_a_ciphertext_copied_into_another_table_fails_to_decrypt(sandbox_version):
    from django.utils import timezone

    check = ConnectivityCheck.objects.create(
        package=sandbox_version.package, version=sandbox_version, sent_at=timezone.now(),
        outcome="ok", message="ok", access_token="token-value",
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE onboarding_connectivitycheck SET access_token = %s WHERE id = %s",
                       [_raw(sandbox_version, "client_secret"), check.pk])
    with pytest.raises(DecryptionError):
        _ = ConnectivityCheck.objects.get(pk=check.pk).access_token


@pytest.mark.django_db
def test_a_tampered_ciphertext_fails_to_decrypt(sandbox_version):
    prefix, _, blob = _raw(sandbox_version, "client_secret").rpartition(":")
    data = bytearray(base64.urlsafe_b64decode(blob))
    data[20] ^= 0x01  # one bit of the sealed text, past the nonce
    _set_raw(sandbox_version, "client_secret",
             f"{prefix}:{base64.urlsafe_b64encode(bytes(data)).decode()}")
    with pytest.raises(DecryptionError) as caught:
        _ = _reload(sandbox_version).client_secret
    assert str(caught.value) == UNREADABLE


# --- NULL, empty and queries ------------------------------------------------------------------

@pytest.mark.django_db
def test_only_none_is_null_and_the_empty_string_is_encrypted(sandbox_version):
    version = PackageVersion(package=sandbox_version.package, number=2, client_secret="",
                             password=None)
    version.save()

    assert _raw(version, "password") is None
    raw_empty = _raw(version, "client_secret")
    assert raw_empty is not None and raw_empty.startswith("v1:test1:")
    reloaded = _reload(version)
    assert reloaded.client_secret == ""
    assert reloaded.password is None


@pytest.mark.django_db
def test_only_isnull_lookups_are_allowed(sandbox_version):
    assert PackageVersion.objects.filter(client_secret__isnull=False).count() == 1
    assert PackageVersion.objects.filter(password__isnull=True).count() == 0
    for lookup in ("client_secret", "client_secret__exact", "client_secret__icontains",
                   "client_secret__startswith", "client_secret__in", "client_secret__lower"):
        value = [KNOWN_SECRET] if lookup.endswith("__in") else KNOWN_SECRET
        with pytest.raises(FieldError):
            list(PackageVersion.objects.filter(**{lookup: value}))


@pytest.mark.django_db
def test_queryset_update_with_plaintext_is_refused(sandbox_version):
    before = _raw(sandbox_version, "client_secret")
    with pytest.raises(FieldError), transaction.atomic():
        PackageVersion.objects.filter(pk=sandbox_version.pk).update(client_secret="plain")
    assert _raw(sandbox_version, "client_secret") == before


@pytest.mark.django_db
def test_queryset_update_with_a_value_sealed_for_the_row_works(sandbox_version):
    field = PackageVersion._meta.get_field("client_secret")
    sealed = field.seal(sandbox_version, "rotated-secret")
    PackageVersion.objects.filter(pk=sandbox_version.pk).update(client_secret=sealed)
    assert _reload(sandbox_version).client_secret == "rotated-secret"


@pytest.mark.django_db
def test_dumpdata_writes_ciphertext_only(sandbox_version):
    out = io.StringIO()
    call_command("dumpdata", "onboarding.packageversion", stdout=out)
    assert KNOWN_SECRET not in out.getvalue()
    assert KNOWN_PASSWORD not in out.getvalue()
    assert "v1:test1:" in out.getvalue()


# --- a value no configured key opens ----------------------------------------------------------

@pytest.mark.django_db
def test_a_value_under_an_unknown_key_raises_instead_of_returning_ciphertext(sandbox_version):
    with override_settings(FIELD_ENCRYPTION_KEYS=key_entry("gone")):
        onboard("Lost keys POS")
    lost = PackageVersion.objects.get(package__integration__name="Lost keys POS")
    with pytest.raises(DecryptionError):
        _ = lost.client_secret
    assert _reload(sandbox_version).client_secret == KNOWN_SECRET


@pytest.mark.django_db
def test_an_unreadable_package_says_so_and_other_pages_keep_working(client, superuser):
    onboard("Readable POS")
    with override_settings(FIELD_ENCRYPTION_KEYS=key_entry("gone")):
        lost = onboard("Lost keys POS")
    client.force_login(superuser)

    change = client.get(f"/admin/onboarding/onboardingpackage/{lost.package_id}/change/")
    assert change.status_code == 200
    assert UNREADABLE in change.content.decode()

    changelist = client.get("/admin/onboarding/onboardingpackage/")
    assert changelist.status_code == 200
    assert UNREADABLE in changelist.content.decode()
    assert "Readable POS" in changelist.content.decode()

    integration_page = client.get(f"/integrations/{lost.package.integration.uuid}/")
    assert integration_page.status_code == 200
    assert UNREADABLE in integration_page.content.decode()

    overview = client.get("/")
    assert overview.status_code == 200
    assert "Readable POS" in overview.content.decode()


# --- the primitives ---------------------------------------------------------------------------

def test_encrypt_uses_the_newest_key_and_any_listed_key_decrypts():
    old, new = key_entry("old"), key_entry("new")
    token = encrypt("value", aad=b"t|c|1", ring=parse_keys(old))
    assert key_id_of(token) == "old"
    both = parse_keys(f"{new},{old}")
    assert decrypt(token, aad=b"t|c|1", ring=both) == "value"
    assert key_id_of(encrypt("value", aad=b"t|c|1", ring=both)) == "new"
    with pytest.raises(DecryptionError):
        decrypt(token, aad=b"t|c|1", ring=parse_keys(new))


def test_every_value_gets_a_fresh_nonce():
    ring = parse_keys(key_entry())
    assert encrypt("same", aad=b"a", ring=ring) != encrypt("same", aad=b"a", ring=ring)


@pytest.mark.parametrize("token", ["", "plain text", "v1:test1:", "v1:test1:!!!", "v2:x:abc"])
def test_anything_but_a_sealed_value_fails_to_decrypt(token):
    with pytest.raises(DecryptionError):
        decrypt(token, aad=b"a", ring=parse_keys(key_entry("test1")))


def test_key_errors_never_contain_the_key():
    material = "c2hvcnQta2V5LW1hdGVyaWFs"
    with pytest.raises(KeyConfigurationError) as caught:
        parse_keys(f"k1:{material}")
    assert material not in str(caught.value)
    assert "FIELD_ENCRYPTION_KEYS" in str(caught.value)
