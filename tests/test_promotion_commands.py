"""`promote` and `rollback`: same service and guards as the admin, exit 1 with the reasons on
stderr when refused, and the end-to-end path onboard → check → promote against the simulator."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from onboarding.models import Environment, PackageVersion, Promotion, VersionSource
from onboarding.services.packages import package_current
from onboarding.simulator import DEMO_ACCOUNT
from tests.manage_subprocess import (  # noqa: F401 -- fixtures
    _migrated_template,
    manage,
    sqlite_child,
)
from tests.simulator_fixtures import simulator  # noqa: F401 -- fixture
from tests.test_promotion import PRODUCTION_SECRET, passing_check, snapshot


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def refused(*args: str) -> str:
    before = snapshot()
    with pytest.raises(CommandError) as info:
        run(*args)
    assert info.value.returncode == 1
    assert snapshot() == before
    return str(info.value)


@pytest.fixture
def checked(sandbox_version, release_manager):
    passing_check(sandbox_version)
    return sandbox_version.package.integration


def test_promote_prints_the_new_production_version(checked):
    out, _ = run("promote", "acme-pos", "--by", "release", "--reason", "launch")
    assert "Promoted Acme POS Sandbox v1 to Production version 1" in out
    assert "with Production's own credentials" in out
    version = package_current(integration=checked, environment=Environment.PRODUCTION)
    assert version.source == VersionSource.PROMOTION
    assert version.client_secret is None  # kept Production's (none): no copy without asking
    assert "Production has no credentials yet" in out and "unverified" not in out


def test_promote_copies_credentials_only_when_asked(checked):
    out, _ = run("promote", "Acme POS", "--by", "release", "--reason", "launch",
                 "--copy-credentials")
    assert "with Sandbox's credentials" in out
    assert "unverified until a Production check passes" in out
    version = package_current(integration=checked, environment=Environment.PRODUCTION)
    assert version.has_credentials and Promotion.objects.get().copied_credentials


def test_promote_refuses_a_user_without_the_right(checked, lead):
    message = refused("promote", "acme-pos", "--by", "lead", "--reason", "launch")
    assert message == ("Not promoted; nothing was changed:\n"
                       "You may not promote this integration to Production.")


def test_promote_refuses_an_empty_reason(checked):
    message = refused("promote", "acme-pos", "--by", "release", "--reason", "  ")
    assert "Give a reason for the promotion." in message


def test_promote_refuses_an_unchecked_sandbox(sandbox_version, release_manager):
    message = refused("promote", "acme-pos", "--by", "release", "--reason", "launch")
    assert "has never passed a connectivity check" in message


def test_promote_refuses_unknown_integrations_and_users(checked):
    assert refused("promote", "nope", "--by", "release", "--reason", "x") == (
        "No integration is named 'nope'.")
    assert refused("promote", "acme-pos", "--by", "ghost", "--reason", "x") == (
        "No user is named 'ghost'.")


@pytest.fixture
def two_production_versions(checked):
    from tests.conftest import onboard

    onboard(environment=Environment.PRODUCTION, client_id="prod-client-998877",
            client_secret=PRODUCTION_SECRET, company_id=555)
    run("promote", "acme-pos", "--by", "release", "--reason", "launch")
    return checked


def test_rollback_prints_the_new_version(two_production_versions):
    out, _ = run("rollback", "acme-pos", "--to-version", "1", "--by", "release",
                 "--reason", "orders broke")
    assert out.startswith("Rolled Acme POS Production back to v1 as version 3.")
    version = package_current(integration=two_production_versions,
                              environment=Environment.PRODUCTION)
    assert (version.number, version.company_id, version.source) == (3, 555, "rollback")


def test_rollback_refuses_the_current_version_and_users_without_the_right(
        two_production_versions, lead):
    message = refused("rollback", "acme-pos", "--to-version", "2", "--by", "release",
                      "--reason", "x")
    assert message.endswith("Choose a version earlier than the current v2.")
    message = refused("rollback", "acme-pos", "--to-version", "1", "--by", "lead",
                      "--reason", "x")
    assert message.endswith("You may not roll back Production of this integration.")


# ---- real processes: exit codes, stderr, and the path a new team follows ---------------------

def test_usage_errors_exit_2(sqlite_child):  # noqa: F811
    _, env = sqlite_child
    result = manage("rollback", "acme-pos", "--to-version", "two", "--by", "x", "--reason", "y",
                    env=env)
    assert result.returncode == 2 and "invalid int value" in result.stderr


def check_connectivity(environment: str, *, env: dict[str, str]):
    return manage("check_connectivity", "demo-shop", "--environment", environment, env=env)


def test_onboard_check_and_promote_end_to_end(sqlite_child, simulator):  # noqa: F811
    _, env = sqlite_child
    env = {**env, "IQMETRIX_SANDBOX_ACCOUNTS_URL": simulator.url,
           "IQMETRIX_PRODUCTION_ACCOUNTS_URL": simulator.url,
           "IQMETRIX_CLIENT_SECRET": DEMO_ACCOUNT.client_secret,
           "IQMETRIX_PASSWORD": DEMO_ACCOUNT.password,
           "DJANGO_SUPERUSER_PASSWORD": "e2e-Admin-pass-0427"}
    steps = [
        ("createsuperuser", "--noinput", "--username", "release", "--email", "r@example.com"),
        ("onboard", "Demo Shop", "--environment", "sandbox", "--client-id",
         DEMO_ACCOUNT.client_id, "--username", DEMO_ACCOUNT.username, "--company-id", "14146"),
    ]
    for step in steps:
        result = manage(*step, env=env)
        assert result.returncode == 0, result.stderr

    refused = manage("promote", "demo-shop", "--by", "release", "--reason", "go live", env=env)
    assert refused.returncode == 1
    assert "Sandbox v1 has never passed a connectivity check" in refused.stderr

    checked = check_connectivity("sandbox", env=env)
    assert checked.returncode == 0, checked.stderr + checked.stdout

    promoted = manage("promote", "demo-shop", "--by", "release", "--reason", "go live",
                      "--copy-credentials", env=env)
    assert promoted.returncode == 0, promoted.stderr
    assert "to Production version 1" in promoted.stdout

    production = check_connectivity("production", env=env)
    assert production.returncode == 0, production.stderr + production.stdout
    listing = manage("packages", "--json", env=env)
    assert '"environment": "production", "version": 1, "state": "verified"' in listing.stdout
    for result in (promoted, production, listing):
        assert DEMO_ACCOUNT.client_secret not in result.stdout + result.stderr


def test_promotion_versions_are_numbered_per_environment(checked):
    run("promote", "acme-pos", "--by", "release", "--reason", "one")
    run("promote", "acme-pos", "--by", "release", "--reason", "two")
    numbers = PackageVersion.objects.filter(package__environment="production").values_list(
        "number", flat=True)
    assert sorted(numbers) == [1, 2]
