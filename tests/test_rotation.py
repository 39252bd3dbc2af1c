"""Key rotation: values written under key A are re-encrypted under B, so A can be dropped."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from onboarding.crypto import key_id_of
from onboarding.models import AuditEvent, ConnectivityCheck, PackageVersion
from onboarding.services.audit import AuditAction, audit_verify
from tests.conftest import KNOWN_PASSWORD, KNOWN_SECRET, onboard
from tests.manage_subprocess import key_entry

KEY_A = key_entry("A")
KEY_B = key_entry("B")
KEY_C = key_entry("C")


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("rotate_encryption_keys", *args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(str(exc))
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _stored_key_ids() -> list[str]:
    ids = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_id, client_secret, username, password "
                       "FROM onboarding_packageversion")
        for row in cursor.fetchall():
            ids += [key_id_of(value) for value in row if value is not None]
    return ids


@pytest.fixture
def written_under_a(db) -> list[PackageVersion]:
    """Two packages (one with a second version) and a live token, all under key A."""
    with override_settings(FIELD_ENCRYPTION_KEYS=KEY_A):
        first = onboard("Acme POS")
        second = onboard("Acme POS", client_secret="second-secret-value")
        other = onboard("Other POS", environment="production")
        ConnectivityCheck.objects.create(
            package=first.package, version=first, sent_at=timezone.now(), outcome="ok",
            message="ok", access_token="access-token-value", refresh_token=None,
        )
    return [first, second, other]


def test_rotation_moves_every_value_to_the_newest_key(written_under_a):
    with override_settings(FIELD_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}"):
        code, out, _ = _run("--check")
        assert code == 1
        assert "A: 13 values" in out  # 3 versions x 4 credentials + 1 token
        assert "13 values on older keys." in out

        code, out, _ = _run()
        assert code == 0
        assert "Re-encrypted 13 values under key B." in out

        code, out, _ = _run("--check")
        assert code == 0
        assert "B (newest): 13 values" in out
        assert "0 values on older keys." in out

    assert set(_stored_key_ids()) == {"B"}
    with override_settings(FIELD_ENCRYPTION_KEYS=KEY_B):
        first, second, other = (PackageVersion.objects.get(pk=v.pk) for v in written_under_a)
        assert (first.client_secret, first.password) == (KNOWN_SECRET, KNOWN_PASSWORD)
        assert second.client_secret == "second-secret-value"
        assert (other.client_id, other.username) == ("client-abcdef123456",
                                                     "api.user@example.com")
        assert ConnectivityCheck.objects.get().access_token == "access-token-value"
        assert ConnectivityCheck.objects.get().refresh_token is None


def test_without_rotation_dropping_the_old_key_makes_values_unreadable(written_under_a):
    # The counterpart of the test above: what rotation prevents.
    from onboarding.crypto import DecryptionError

    with override_settings(FIELD_ENCRYPTION_KEYS=KEY_B), pytest.raises(DecryptionError):
        _ = PackageVersion.objects.get(pk=written_under_a[0].pk).client_secret


def test_check_says_to_put_back_a_key_that_was_dropped_too_early(written_under_a):
    # Rotation cannot move values off a key that is no longer configured: "run
    # rotate_encryption_keys" would be the wrong advice (it leaves them where they are), and so
    # it is when a restored backup is older than the last rotation.
    with override_settings(FIELD_ENCRYPTION_KEYS=KEY_B):
        code, out, err = _run("--check")
    assert code == 1
    assert "A (not configured): 13 values" in out
    assert "13 values on keys not in FIELD_ENCRYPTION_KEYS: A." in err
    assert "put those keys back" in err
    assert "before removing an old key" not in err


def test_rotation_is_audited_without_values_and_keeps_the_chain_intact(written_under_a):
    with override_settings(FIELD_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}"):
        _run()
    event = AuditEvent.objects.filter(action=AuditAction.KEY_ROTATION).get()
    assert event.target == "B"
    assert event.details["rotated"] == 13
    assert event.details["values_by_key_before"] == {"A": 13}
    assert KNOWN_SECRET not in str(event.details)
    assert audit_verify().ok


def test_rotating_twice_changes_nothing_the_second_time(written_under_a):
    with override_settings(FIELD_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}"):
        _run()
        with connection.cursor() as cursor:
            cursor.execute("SELECT client_secret FROM onboarding_packageversion ORDER BY id")
            before = cursor.fetchall()
        code, out, _ = _run()
        with connection.cursor() as cursor:
            cursor.execute("SELECT client_secret FROM onboarding_packageversion ORDER BY id")
            assert cursor.fetchall() == before
    assert code == 0
    assert "Re-encrypted 0 values" in out


def test_a_value_no_key_opens_is_reported_and_left_alone(written_under_a):
    with override_settings(FIELD_ENCRYPTION_KEYS=KEY_C):
        onboard("Lost POS")
    lost = PackageVersion.objects.get(package__integration__name="Lost POS")
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret FROM onboarding_packageversion WHERE id = %s",
                       [lost.pk])
        lost_raw = cursor.fetchone()[0]

    with override_settings(FIELD_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}"):
        code, out, err = _run()
    assert code == 1
    assert "Re-encrypted 13 values under key B." in out
    assert err.count("cannot be decrypted with the configured keys") == 4
    assert str(lost.uuid) in err
    assert "4 values could not be decrypted" in err
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret FROM onboarding_packageversion WHERE id = %s",
                       [lost.pk])
        assert cursor.fetchone()[0] == lost_raw


def test_rotation_works_in_small_batches(written_under_a):
    with override_settings(FIELD_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}"):
        code, _, _ = _run("--batch-size", "1")
        assert code == 0
        assert _run("--check")[0] == 0


@pytest.mark.parametrize("size", ["0", "10001", "ten", "1e3"])
def test_a_batch_size_out_of_range_is_a_usage_error(written_under_a, size):
    with (override_settings(FIELD_ENCRYPTION_KEYS=f"{KEY_B},{KEY_A}"),
          pytest.raises(CommandError, match="--batch-size: must be a whole number of rows "
                                            "from 1 to 10000")):
        call_command("rotate_encryption_keys", "--batch-size", size, stdout=io.StringIO())
    assert set(_stored_key_ids()) == {"A"}
