"""Django's ModelBackend, with a user's permissions loaded in one query instead of two.

Every page asks for the signed-in user's permissions (the navigation and the access decision in
services/access.py both do), and Django's backend reads them with one query for the user's own
and another for their groups'. This backend reads both at once; everything else, including the
per-request cache on the user object and what superusers and inactive users get, is Django's.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q


class OneQueryModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            if user_obj.is_superuser:
                perms = Permission.objects.all()
            else:
                perms = Permission.objects.filter(Q(user=user_obj) | Q(group__user=user_obj))
            user_obj._perm_cache = {
                f"{app_label}.{codename}"
                for app_label, codename in perms.values_list(
                    "content_type__app_label", "codename").order_by().distinct()
            }
        return user_obj._perm_cache
