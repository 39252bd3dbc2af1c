"""The one access decision. Every view, admin action and command asks `can()`; the "who has
Production access" report enumerates exactly its answers.

Sandbox roles come from Django permissions (directly or through groups). Production roles come
from superuser status, permissions, or an active AccessGrant. Any role in an environment implies
seeing it: nobody checks or edits what they cannot view. Promotion is a Production role.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Case, Q, QuerySet, When
from django.utils import timezone

from onboarding.compiled import CompiledQuery
from onboarding.models import AccessGrant, Environment, Integration, Role

PERMISSION_ROLES: dict[Environment, tuple[Role, ...]] = {
    Environment.SANDBOX: (Role.VIEW, Role.CHECK, Role.EDIT, Role.REVEAL),
    Environment.PRODUCTION: (Role.VIEW, Role.CHECK, Role.EDIT, Role.REVEAL, Role.PROMOTE),
}


def permission_codename(*, role: Role | str, environment: Environment | str) -> str:
    return f"{role}_{environment}"


def _live_grants(now: Any = None) -> QuerySet[AccessGrant]:
    return AccessGrant.objects.filter(revoked_at__isnull=True,
                                      valid_until__gt=now or timezone.now())


_GRANT_FIELDS = tuple(field.attname for field in AccessGrant._meta.concrete_fields)
# Every page asks this of its user: compiled once (onboarding/compiled.py).
_users_live_grants = CompiledQuery(lambda *, user_id, now: _live_grants(now).filter(
    user_id=user_id).values_list(*_GRANT_FIELDS))


def active_grants(*, user: Any, now: Any = None) -> list[AccessGrant]:
    """The user's live grants, cached on the user object for the rest of the request."""
    cache = getattr(user, "_aislekeys_grants", None)
    if cache is None:
        rows = _users_live_grants.rows(user_id=user.pk, now=now or timezone.now())
        cache = [AccessGrant.from_db(DEFAULT_DB_ALIAS, _GRANT_FIELDS, row) for row in rows]
        user._aislekeys_grants = cache
    return cache


def load_active_grants(*, users: Sequence[Any], now: Any = None) -> None:
    """Fill `active_grants`' cache of many users with one query, for pages that list them all
    (with each grant's integration and granter, which such pages show)."""
    by_user: dict[Any, list[AccessGrant]] = {user.pk: [] for user in users}
    for grant in (_live_grants(now).filter(user_id__in=list(by_user))
                  .select_related("integration", "granted_by")):
        by_user[grant.user_id].append(grant)
    for user in users:
        user._aislekeys_grants = by_user[user.pk]


def _roles_from_grants(*, user: Any, integration: Integration | None) -> set[str]:
    return {
        grant.role
        for grant in active_grants(user=user)
        if grant.integration_id is None
        or (integration is not None and grant.integration_id == integration.pk)
    }


def _permitted_roles(*, user: Any, environment: Environment) -> frozenset[str]:
    """The roles an active user's permissions give in one environment.

    A page asks this several times (the navigation, each access decision, the overview's key),
    and each `has_perm` walks the authentication backends again. Remembered on the user object
    for as long as the permission cache that OneQueryModelBackend keeps on it (the same set
    object) lasts: a user whose permissions were read again is answered afresh."""
    if not hasattr(user, "_perm_cache"):
        user.get_all_permissions()  # fills the backend's cache
    permissions = getattr(user, "_perm_cache", None)
    if permissions is None:  # a backend that keeps no such cache: ask has_perm, as Django does
        return frozenset(str(role) for role in PERMISSION_ROLES[environment] if user.has_perm(
            f"onboarding.{permission_codename(role=role, environment=environment)}"))
    memo = getattr(user, "_aislekeys_roles", None)
    if memo is None or memo[0] is not permissions:
        memo = user._aislekeys_roles = (permissions, {})
    found = memo[1].get(environment)
    if found is None:
        # What ModelBackend.has_perm answers for an active user: membership of this set.
        found = memo[1][environment] = frozenset(
            str(role) for role in PERMISSION_ROLES[environment]
            if f"onboarding.{permission_codename(role=role, environment=environment)}"
            in permissions)
    return found


def roles(*, user: Any, environment: Environment | str, integration: Integration | None = None
          ) -> set[str]:
    """Every role the user holds in one environment (for one integration, if given)."""
    environment = Environment(environment)
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return {str(role) for role in PERMISSION_ROLES[environment]}
    held = set(_permitted_roles(user=user, environment=environment))
    if environment == Environment.PRODUCTION:
        held |= _roles_from_grants(user=user, integration=integration)
    if held:
        held.add(str(Role.VIEW))
    return held


def can(*, user: Any, action: Role | str, environment: Environment | str,
        integration: Integration | None = None) -> bool:
    """May `user` do `action` in `environment` (on `integration`, or anywhere if None)?"""
    return str(action) in roles(user=user, environment=environment, integration=integration)


def granted_integration_ids(*, user: Any) -> set[int]:
    """The integrations the user holds an integration-scoped grant on: the only ones where their
    roles can differ from their roles in the environment."""
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    return {grant.integration_id for grant in active_grants(user=user)
            if grant.integration_id is not None}


def roles_lookup(*, user: Any) -> Callable[[Environment | str, Integration | None], set[str]]:
    """`roles()` for many integrations at once, for pages that list them: the answer is the same
    for every integration without a grant of its own, so `roles()` runs once per environment,
    and again only for the integrations the user holds an integration-scoped grant on."""
    scoped = granted_integration_ids(user=user)
    anywhere = {env: roles(user=user, environment=env) for env in Environment}

    def lookup(environment: Environment | str, integration: Integration | None) -> set[str]:
        if integration is not None and integration.pk in scoped:
            return roles(user=user, environment=environment, integration=integration)
        # A member and its value are the same key (TextChoices); anything else is refused.
        found = anywhere.get(environment)
        return found if found is not None else anywhere[Environment(environment)]

    return lookup


def has_any_access(*, user: Any) -> bool:
    """Does the user hold any role anywhere (an environment, or one integration by a grant)?
    Someone with none sees no integration because of that, not because there are none."""
    if any(roles(user=user, environment=env) for env in Environment):
        return True
    return bool(user is not None and user.is_authenticated and user.is_active
                and active_grants(user=user))


def sees_every_integration(*, user: Any) -> bool:
    """Does a role in an environment let the user view every integration (not only those a grant
    names)? `visible_integrations` is then all of them."""
    return any(roles(user=user, environment=env) for env in Environment)


def visible_integrations(*, user: Any) -> QuerySet[Integration]:
    """Integrations the user may view in at least one environment."""
    if sees_every_integration(user=user):
        return Integration.objects.all()
    if user is None or not user.is_authenticated or not user.is_active:
        return Integration.objects.none()
    scoped = {grant.integration_id for grant in active_grants(user=user)}
    return Integration.objects.filter(pk__in=scoped)


def visible_namesake(*, user: Any, name: str, slug: str) -> Integration | None:
    """The integration the user may view that already answers to `name` or `slug`, as its name
    or its slug and without case (as `packages.integration_names_taken` refuses them), the one
    so named first. None if there is none the user may view: a refusal that links to it then
    tells them nothing more than that the name is taken."""
    clash = Q()
    for value in (name, slug):
        if value:
            clash |= Q(name__iexact=value) | Q(slug__iexact=value)
    if not clash:
        return None
    return (visible_integrations(user=user).filter(clash)
            .order_by(Case(When(name__iexact=name, then=0), default=1), "name").first())


def require(*, user: Any, action: Role | str, environment: Environment | str,
            integration: Integration | None = None) -> None:
    """Raise PermissionDenied with a plain sentence unless `can()` allows it."""
    if not can(user=user, action=action, environment=environment, integration=integration):
        env_label = Environment(environment).label
        raise PermissionDenied(f"You may not {action} {env_label} packages of this integration.")
