"""Shared fixtures: one user per role, packages with known secrets, the local simulator."""

from __future__ import annotations

import importlib
import ipaddress
import socket
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User

from onboarding.models import Environment, Integration, PackageVersion, VersionSource
from onboarding.services.packages import PackageData, package_onboard

KNOWN_SECRET = "cs-Zq8mXv2LrT5wKp9"
KNOWN_PASSWORD = "pw-Hn4sRt7YuB2eGc6"


@pytest.fixture(autouse=True, scope="session")
def _no_host_but_loopback():
    """Tests never reach a real host, iQmetrix's least of all: a test that forgot the simulator
    fixture (the settings keep iQmetrix's real URLs) gets the name-resolution failure an offline
    machine would give, at once, instead of a request to the internet."""
    resolve = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name != "localhost" and not _is_loopback(name):
            raise socket.gaierror(socket.EAI_NONAME, f"tests resolve loopback names only: {name}")
        return resolve(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", loopback_only)
        yield


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with no cached overview rows. Their keys hold the integrations' random
    uuids, so one test's rows could not show in another's anyway; this keeps it obvious."""
    from django.core.cache import cache

    cache.clear()


def _is_loopback(name: str) -> bool:
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


DEFAULT_GROUPS = importlib.import_module("onboarding.migrations.0002_default_groups").GROUPS


def default_group(name: str) -> Group:
    """The group the data migration made; recreated when a transactional test flushed it
    (a flush restores permissions through post_migrate, but not data-migration rows)."""
    group, created = Group.objects.get_or_create(name=name)
    if created:
        group.permissions.add(*Permission.objects.filter(
            content_type__app_label="onboarding", codename__in=DEFAULT_GROUPS[name]
        ))
    return group


def make_user(username: str, *groups: str, **extra: Any) -> User:
    user = User.objects.create_user(username=username, password="unused-in-tests-1234", **extra)
    for name in groups:
        user.groups.add(default_group(name))
    return user


@pytest.fixture
def lead(db) -> User:
    return make_user("lead", "Integration leads")


@pytest.fixture
def release_manager(db) -> User:
    return make_user("release", "Release managers", is_staff=True)


@pytest.fixture
def auditor(db) -> User:
    return make_user("auditor", "Auditors")


@pytest.fixture
def outsider(db) -> User:
    return make_user("outsider")


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser(username="root", password="unused-in-tests-1234")


def package_data(**overrides: Any) -> PackageData:
    values: dict[str, Any] = {
        "client_id": "client-abcdef123456",
        "username": "api.user@example.com",
        "client_secret": KNOWN_SECRET,
        "password": KNOWN_PASSWORD,
        "company_id": 14146,
        "location_id": "loc-1",
    }
    values.update(overrides)
    return PackageData(**values)


def onboard(name: str = "Acme POS", environment: str = Environment.SANDBOX,
            **overrides: Any) -> PackageVersion:
    stored, _ = package_onboard(integration_name=name, environment=environment,
                                data=package_data(**overrides), source=VersionSource.COMMAND)
    return stored.version


@pytest.fixture
def sandbox_version(db) -> PackageVersion:
    return onboard()


@pytest.fixture
def integration(sandbox_version) -> Integration:
    return sandbox_version.package.integration


@pytest.fixture
def sandbox_simulator(settings):
    """A local iQmetrix stand-in as the Sandbox accounts host. It knows the demo account and the
    credentials of `package_data()`, so `onboard()` packages check ok."""
    from onboarding.simulator import DEMO_ACCOUNT, Account, Simulator

    known = Account(client_id="client-abcdef123456", client_secret=KNOWN_SECRET,
                    username="api.user@example.com", password=KNOWN_PASSWORD)
    sim = Simulator(host="127.0.0.1", port=0, accounts=[DEMO_ACCOUNT, known])
    sim.start()
    settings.IQMETRIX_ACCOUNTS_URLS = {**settings.IQMETRIX_ACCOUNTS_URLS, "sandbox": sim.url}
    try:
        yield sim
    finally:
        sim.stop()
