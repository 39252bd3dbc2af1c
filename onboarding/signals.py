"""Sign-in, permission and group-membership events reach the audit log through signals; the
receivers stay thin and hand over to the audit service."""

from __future__ import annotations

from typing import Any

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.contrib.auth.models import Group, User
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.db.models.signals import (
    m2m_changed,
    post_delete,
    post_save,
    pre_delete,
    pre_save,
)
from django.dispatch import receiver

from onboarding.services.audit import (
    ACCOUNT_WATCHED,
    AuditAction,
    RequestMeta,
    account_deletion_facts,
    audit_account_deleted,
    audit_account_flags,
    audit_group_deleted,
    audit_group_renamed,
    audit_membership_change,
    audit_password_set,
    audit_record,
    group_deletion_facts,
)


@receiver(user_logged_in)
def audit_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    audit_record(action=AuditAction.LOGIN, actor=user, meta=RequestMeta.from_request(request))


@receiver(user_logged_out)
def audit_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(action=AuditAction.LOGOUT, actor=user, meta=RequestMeta.from_request(request))


@receiver(user_login_failed)
def audit_login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    # Django already replaces the password in `credentials`; only the user name is kept.
    username = str(credentials.get("username", ""))[:150]
    user = getattr(request, "user", None)
    if (user is not None and user.is_authenticated and user.get_username() == username):
        # A signed-in user mistyping their own password where a sensitive action asks for it
        # again (dashboard.stepup): their own failed confirmation, not someone's failed
        # sign-in to their account. Where it was asked is kept; the password never is.
        with transaction.atomic():
            audit_record(action=AuditAction.STEP_UP_FAILED, actor=user,
                         meta=RequestMeta.from_request(request), target=username,
                         details={"path": request.path[:200]})
        return
    with transaction.atomic():
        audit_record(action=AuditAction.LOGIN_FAILED, meta=RequestMeta.from_request(request),
                     target=username)


@receiver(pre_save, sender=AccessAttempt)
def drop_posted_form(sender: Any, instance: AccessAttempt, **kwargs: Any) -> None:
    # django-axes keeps the POST of a failed attempt, masking only the fields it knows to be
    # passwords. Here a mistyped password confirmation posts the form it guards: a client
    # secret, a pasted cURL command, the mistyped password under another name. Nothing posted
    # is kept (covers axes' first insert and the Concat of its later updates alike); the user
    # name, address, path and count are what the lockout needs.
    instance.post_data = ""


@receiver(user_locked_out)
def audit_lockout(sender: Any, request: Any = None, username: str | None = None,
                  ip_address: str | None = None, **kwargs: Any) -> None:
    audit_record(action=AuditAction.LOCKOUT, meta=RequestMeta.from_request(request),
                 target=(username or "")[:150])


# Permission and group-membership changes: whatever makes them (admin, shell, a migration of
# data), the m2m signals see them all.
@receiver(m2m_changed, sender=User.groups.through)
def audit_group_membership(sender: Any, instance: Any, action: str, model: type,
                           pk_set: set[int] | None, **kwargs: Any) -> None:
    audit_membership_change(kind="groups", instance=instance, action=action, model=model,
                            pk_set=pk_set)


@receiver(m2m_changed, sender=User.user_permissions.through)
def audit_user_permissions(sender: Any, instance: Any, action: str, model: type,
                           pk_set: set[int] | None, **kwargs: Any) -> None:
    audit_membership_change(kind="user_permissions", instance=instance, action=action,
                            model=model, pk_set=pk_set)


@receiver(m2m_changed, sender=Group.permissions.through)
def audit_group_permissions(sender: Any, instance: Any, action: str, model: type,
                            pk_set: set[int] | None, **kwargs: Any) -> None:
    audit_membership_change(kind="group_permissions", instance=instance, action=action,
                            model=model, pk_set=pk_set)


@receiver(pre_save, sender=User)
def remember_account_flags(sender: Any, instance: Any, update_fields: Any = None,
                           **kwargs: Any) -> None:
    # Only the old values are read here; the decision to audit is the service's.
    if update_fields is not None and not set(ACCOUNT_WATCHED) & set(update_fields):
        instance._aislekeys_flags = {f: getattr(instance, f) for f in ACCOUNT_WATCHED}
    elif instance.pk is None:
        instance._aislekeys_flags = None
    else:
        instance._aislekeys_flags = User.objects.filter(pk=instance.pk).values(
            *ACCOUNT_WATCHED).first()


@receiver(pre_save, sender=User)
def remember_password_set(sender: Any, instance: Any, **kwargs: Any) -> None:
    # set_password() keeps the new password in `_password` until the save (for Django's
    # password validators); a hash upgrade at sign-in clears it first, so it is not recorded.
    instance._aislekeys_password_set = (
        instance.pk is not None and getattr(instance, "_password", None) is not None
    )


@receiver(post_save, sender=User)
def audit_account_flag_changes(sender: Any, instance: Any, **kwargs: Any) -> None:
    audit_account_flags(user=instance, before=getattr(instance, "_aislekeys_flags", None))
    if getattr(instance, "_aislekeys_password_set", False):
        audit_password_set(user=instance)


# Deleting an account or a group takes permissions away without any m2m signal: what goes is
# read before the delete and recorded after it.
@receiver(pre_delete, sender=User)
def remember_account_roles(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance._aislekeys_deleted = account_deletion_facts(user=instance)


@receiver(post_delete, sender=User)
def audit_account_deletion(sender: Any, instance: Any, **kwargs: Any) -> None:
    audit_account_deleted(username=instance.get_username(),
                          facts=getattr(instance, "_aislekeys_deleted", None))


@receiver(pre_save, sender=Group)
def remember_group_name(sender: Any, instance: Any, update_fields: Any = None,
                        **kwargs: Any) -> None:
    if instance.pk is None or (update_fields is not None and "name" not in update_fields):
        instance._aislekeys_name = None
    else:
        instance._aislekeys_name = Group.objects.filter(pk=instance.pk).values_list(
            "name", flat=True).first()


@receiver(post_save, sender=Group)
def audit_group_rename(sender: Any, instance: Any, **kwargs: Any) -> None:
    audit_group_renamed(group=instance, before=getattr(instance, "_aislekeys_name", None))


@receiver(pre_delete, sender=Group)
def remember_group_members(sender: Any, instance: Any, **kwargs: Any) -> None:
    instance._aislekeys_deleted = group_deletion_facts(group=instance)


@receiver(post_delete, sender=Group)
def audit_group_deletion(sender: Any, instance: Any, **kwargs: Any) -> None:
    audit_group_deleted(name=instance.name, facts=getattr(instance, "_aislekeys_deleted", None))
