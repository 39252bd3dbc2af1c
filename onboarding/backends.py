"""Django's ModelBackend, with a user's permissions loaded in one query instead of two.

Every page asks for the signed-in user's permissions (the navigation and the access decision in
services/access.py both do), and Django's backend reads them with one query for the user's own
and another for their groups'. This backend reads both at once; everything else, including the
per-request cache on the user object and what superusers and inactive users get, is Django's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import F, Q, QuerySet

from onboarding.compiled import CompiledQuery


def _labels(permissions: QuerySet[Permission]) -> QuerySet[Permission]:
    return permissions.values_list("content_type__app_label", "codename").order_by().distinct()


# Every page asks this of its user: compiled once (onboarding/compiled.py).
_users_permissions = CompiledQuery(lambda *, user_id: _labels(
    Permission.objects.filter(Q(user=user_id) | Q(group__user=user_id))))


class OneQueryModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            labels = (_labels(Permission.objects.all()) if user_obj.is_superuser
                      else _users_permissions.rows(user_id=user_obj.pk))
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in labels}
        return user_obj._perm_cache


def load_permissions(*, users: Sequence[Any]) -> None:
    """Fill the permission cache of many users with one query, for pages that list them all
    (the access report asks `has_perm` of every user). Superusers and inactive users are left
    to the backend, which answers them without a query of their own anyway."""
    pending = {user.pk: user for user in users
               if user.is_active and not user.is_superuser and not hasattr(user, "_perm_cache")}
    if not pending:
        return
    found: dict[Any, set[str]] = {pk: set() for pk in pending}
    own = Permission.objects.filter(user__in=list(pending)).values_list(
        F("user"), "content_type__app_label", "codename")
    through_groups = Permission.objects.filter(group__user__in=list(pending)).values_list(
        F("group__user"), "content_type__app_label", "codename")
    for user_id, app_label, codename in own.order_by().union(through_groups.order_by()):
        found[user_id].add(f"{app_label}.{codename}")
    for pk, user in pending.items():
        user._perm_cache = found[pk]
