"""The lead's "Add onboarding package" pages: a new integration with its first package, and a
new version of one environment's package. Each page has two actions on two URLs: Save, and Save
and check (store, then run the one-click check with trigger SAVE).

The paste box and how blanks keep current values are explained in dashboard/forms.py. Production
changes ask for the user's password again (dashboard/stepup.py) when the last confirmation is not
fresh; the field is then part of this same form, so nothing typed is lost on the way.
"""

from __future__ import annotations

import copy
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.access import deny, integration_for, require_for
from dashboard.forms import SENSITIVE_FIELDS, NewIntegrationForm, PackageForm, rebase_form
from dashboard.stepup import stepup_confirm, stepup_is_fresh
from onboarding.models import (
    CheckTrigger,
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
    Role,
    VersionSource,
)
from onboarding.services.access import can
from onboarding.services.audit import RequestMeta
from onboarding.services.checks import CheckError, check_run
from onboarding.services.fields import labels
from onboarding.services.packages import (
    IntegrationExists,
    PackageChanged,
    PackageError,
    Stored,
    package_current,
    package_onboard,
    package_store,
)

TEMPLATE = "dashboard/package_form.html"


@sensitive_post_parameters(*SENSITIVE_FIELDS)
@require_http_methods(["GET", "POST"])
def integration_new(request: HttpRequest) -> HttpResponse:
    return _new(request, check=False)


@sensitive_post_parameters(*SENSITIVE_FIELDS)
@require_POST
def integration_new_check(request: HttpRequest) -> HttpResponse:
    return _new(request, check=True)


@sensitive_post_parameters(*SENSITIVE_FIELDS)
@require_http_methods(["GET", "POST"])
def package_edit(request: HttpRequest, uuid: UUID, environment: str) -> HttpResponse:
    return _edit(request, uuid=uuid, environment=environment, check=False)


@sensitive_post_parameters(*SENSITIVE_FIELDS)
@require_POST
def package_edit_check(request: HttpRequest, uuid: UUID, environment: str) -> HttpResponse:
    return _edit(request, uuid=uuid, environment=environment, check=True)


def _new(request: HttpRequest, *, check: bool) -> HttpResponse:
    editable = [env for env in Environment
                if can(user=request.user, action=Role.EDIT, environment=env)]
    if not editable:
        raise deny(request, action=Role.EDIT, environment=Environment.SANDBOX, integration=None)
    if (request.method == "POST" and Environment.PRODUCTION not in editable
            and request.POST.get("environment") == Environment.PRODUCTION):
        # The page never offers Production to this user: a crafted attempt, audited as such.
        raise deny(request, action=Role.EDIT, environment=Environment.PRODUCTION,
                   integration=None)
    needs_stepup = Environment.PRODUCTION in editable and not stepup_is_fresh(request)
    form = NewIntegrationForm(request.POST if request.method == "POST" else None,
                              environments=editable, needs_stepup=needs_stepup, user=request.user)
    if form.is_valid():
        env = Environment(form.cleaned_data["environment"])
        if _stepup_passed(request, form, env):
            try:
                stored, _ = package_onboard(
                    integration_name=form.cleaned_data["name"], environment=env,
                    data=form.package_data(), actor=request.user,
                    meta=RequestMeta.from_request(request), source=VersionSource.EDIT,
                    new_integration=True)
            except IntegrationExists as exc:
                form.add_error("name", str(exc))
            except (ValidationError, PackageError) as exc:
                _add_error(form, exc)
            else:
                return _saved(request, form, stored=stored, check=check)
    check_allowed = any(can(user=request.user, action=Role.CHECK, environment=env)
                        for env in editable)
    return _render(request, form, integration=None, environment=None,
                   check_allowed=check_allowed)


def _edit(request: HttpRequest, *, uuid: UUID, environment: str, check: bool) -> HttpResponse:
    if environment not in Environment.values:
        raise Http404("No such environment.")
    env = Environment(environment)
    # 404 for an environment the user may not see (as every page of one), 403 only for one
    # they see but may not edit.
    integration = integration_for(request, uuid=uuid, environment=env)
    require_for(request, action=Role.EDIT, environment=env, integration=integration)
    current = package_current(integration=integration, environment=env)
    needs_stepup = env == Environment.PRODUCTION and not stepup_is_fresh(request)
    form = PackageForm(request.POST if request.method == "POST" else None, current=current,
                       needs_stepup=needs_stepup)
    if form.is_valid() and _stepup_passed(request, form, env):
        try:
            stored = package_store(integration=integration, environment=env,
                                    data=form.package_data(), actor=request.user,
                                    meta=RequestMeta.from_request(request),
                                    based_on=form.cleaned_data.get("base_version"))
        except PackageChanged:
            # Under the package lock the service saw a newer version than the form was filled
            # from: show it merged with what was typed.
            current = package_current(integration=integration, environment=env)
            form.add_error(None, rebase_form(form, current))
        except (ValidationError, PackageError) as exc:
            _add_error(form, exc)
        else:
            return _saved(request, form, stored=stored, check=check)
    check_allowed = can(user=request.user, action=Role.CHECK, environment=env,
                        integration=integration)
    return _render(request, form, integration=integration, environment=env,
                   check_allowed=check_allowed)


def _stepup_passed(request: HttpRequest, form: PackageForm, env: Environment) -> bool:
    """Production changes need a fresh password confirmation; Sandbox ones do not."""
    if env != Environment.PRODUCTION:
        return True
    password = form.cleaned_data.get("confirm_password") or None
    if stepup_confirm(request, password=password):
        return True
    if "confirm_password" not in form.fields:  # went stale while the form was open
        form.fields["confirm_password"] = copy.deepcopy(PackageForm.base_fields["confirm_password"])
    form.add_error("confirm_password", "Enter the password you sign in with: Production "
                   "changes ask for it again." if not password else
                   "That is not your password. Enter the password you sign in with.")
    return False


def _add_error(form: PackageForm, exc: ValidationError | PackageError) -> None:
    form.add_error(None, exc if isinstance(exc, ValidationError) else str(exc))


def _saved(request: HttpRequest, form: PackageForm, *, stored: Stored,
           check: bool) -> HttpResponse:
    version = stored.version
    package: OnboardingPackage = version.package
    env, integration = package.env, package.integration
    note = (f"Saved {env.label} version {version.number} of {integration.name}." if stored.new
            else f"{integration.name} {env.label} version {version.number} already holds "
                 "these values: nothing new was saved.")
    if form.taken_from_paste:
        note += f" Taken from the pasted text: {labels(form.taken_from_paste)}."
    messages.success(request, note)
    pasted_env = form.pasted_environment
    if pasted_env and pasted_env != env:
        messages.warning(request, f"The pasted command was for the {Environment(pasted_env).label} "
                         f"accounts host, but this is the {env.label} package: check that you "
                         "pasted the right e-mail.")
    if check:
        _check(request, package)
    return redirect(_integration_url(integration))


def _check(request: HttpRequest, package: OnboardingPackage) -> None:
    label = package.env.label
    try:
        result = check_run(package=package, actor=request.user, trigger=CheckTrigger.SAVE,
                           meta=RequestMeta.from_request(request))
    except PermissionDenied:
        messages.warning(request, f"No check was run: you may not run {label} checks.")
    except CheckError as exc:
        messages.warning(request, f"No check was run: {exc}")
    else:
        level = messages.SUCCESS if result.ok else messages.ERROR
        # The outcome's words, as the cards show them ("Invalid user name or password"), not
        # its code.
        messages.add_message(request, level,
                             f"{label} check: {result.get_outcome_display()}. {result.message}")


def _ask_for_secrets_again(form: PackageForm) -> None:
    """The form came back with errors: secrets typed or pasted are not in the page (they are
    never sent back), and a blank would keep the OLD value, so say so next to each of them."""
    keeps = " Left empty, the current one is kept." if form.current is not None else ""
    for name in PackageVersion.SECRET_FIELDS:
        if (form.data.get(name) or "") and name not in form.errors:
            form.add_error(name, f"Enter it again: secrets are never sent back to the page.{keeps}")


def _integration_url(integration: Integration) -> str:
    return reverse("dashboard:integration", kwargs={"uuid": integration.uuid})


def _render(request: HttpRequest, form: PackageForm, *, integration: Integration | None,
            environment: Environment | None, check_allowed: bool) -> HttpResponse:
    if integration is None:
        save_url, check_url = reverse("dashboard:integration_new"), reverse(
            "dashboard:integration_new_check")
    else:
        kwargs = {"uuid": integration.uuid, "environment": environment.value}
        save_url = reverse("dashboard:package_edit", kwargs=kwargs)
        check_url = reverse("dashboard:package_edit_check", kwargs=kwargs)
    if form.is_bound:
        _ask_for_secrets_again(form)
    return render(request, TEMPLATE, {
        "form": form, "integration": integration, "environment": environment,
        "current": getattr(form, "current", None), "save_url": save_url,
        "check_url": check_url if check_allowed else None,
        "taken_from_paste": labels(form.taken_from_paste) if form.is_bound else "",
    })
