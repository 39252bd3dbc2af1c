"""The permission backend reads a user's own and group permissions in one query, and answers
exactly what Django's ModelBackend answers."""

from __future__ import annotations

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from onboarding.backends import OneQueryModelBackend, load_permissions
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def fresh(user: User) -> User:
    return User.objects.get(pk=user.pk)  # no permission cache from an earlier call


@pytest.fixture
def users() -> list[User]:
    direct = make_user("direct")
    direct.user_permissions.add(Permission.objects.get(codename="check_sandbox"))
    both = make_user("both", "Integration leads", "Auditors")
    both.user_permissions.add(Permission.objects.get(codename="promote_production"),
                              Permission.objects.get(codename="view_sandbox"))  # also a lead's
    return [
        direct, both, make_user("grouped", "Release managers"), make_user("none"),
        make_user("inactive", "Integration leads", is_active=False),
        make_user("root", is_superuser=True),
    ]


def test_every_user_gets_what_djangos_backend_gives(users):
    for user in users:
        ours = OneQueryModelBackend().get_all_permissions(fresh(user))
        assert ours == ModelBackend().get_all_permissions(fresh(user)), user.username
    assert "onboarding.promote_production" in OneQueryModelBackend().get_all_permissions(
        fresh(users[1]))
    assert OneQueryModelBackend().get_all_permissions(fresh(users[4])) == set()
    assert len(OneQueryModelBackend().get_all_permissions(fresh(users[5]))) == \
        Permission.objects.count()


def test_one_query_and_then_the_cache(users):
    user = fresh(users[1])
    with CaptureQueriesContext(connection) as captured:
        assert user.has_perm("onboarding.view_sandbox")
        assert user.has_perm("onboarding.promote_production")
        assert not user.has_perm("onboarding.delete_integration")
    assert len(captured) == 1


def test_it_is_the_configured_backend(settings):
    assert "onboarding.backends.OneQueryModelBackend" in settings.AUTHENTICATION_BACKENDS
    assert "django.contrib.auth.backends.ModelBackend" not in settings.AUTHENTICATION_BACKENDS


def test_load_permissions_fills_every_users_cache_with_what_djangos_backend_gives(users):
    expected = {user.pk: ModelBackend().get_all_permissions(fresh(user)) for user in users}
    loaded = [fresh(user) for user in users if not user.is_superuser]
    with CaptureQueriesContext(connection) as captured:
        load_permissions(users=loaded)
        for user in loaded:
            assert OneQueryModelBackend().get_all_permissions(user) == expected[user.pk], \
                user.username
    assert len(captured) == 1  # one for all of them, none afterwards


def test_load_permissions_of_nobody_asks_nothing(db):
    with CaptureQueriesContext(connection) as captured:
        load_permissions(users=[])
    assert len(captured) == 0
