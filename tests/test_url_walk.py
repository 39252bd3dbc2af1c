"""Walk every URL of the project for every role: never a 500, and the access pattern the design
promises (anonymous → sign-in, outsiders → 404, read-only → 403, permitted → 200).

The walker enumerates the URL resolver, so URLs added later are covered without editing this
file: object parameters are filled from real objects by the path segment before them
("packages/<uuid>" → a Sandbox and a Production package, "integrations/<uuid>" → an integration,
"grants/<uuid>" → a grant), `environment` by both environments, admin object ids by the model in
the URL name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern
from django.utils import timezone

from onboarding.models import AccessGrant, Environment, Role
from onboarding.services.checks import check_run
from tests.conftest import make_user, onboard

ROLES = ["anonymous", "outsider", "lead", "release_manager", "auditor", "superuser"]
LOGIN = "/accounts/login/"
SAFE = {200, 302, 400, 403, 404, 405, 409}


@dataclass(frozen=True)
class Route:
    name: str          # namespaced, for reverse()
    params: tuple[str, ...]
    segments: str      # the route text, to tell which object a parameter means
    admin: bool


def _params(pattern: URLPattern) -> tuple[str, ...]:
    if isinstance(pattern.pattern, RoutePattern):
        return tuple(pattern.pattern.converters)
    return tuple(pattern.pattern.regex.groupindex)


def routes(resolver: URLResolver | None = None, ns: tuple[str, ...] = (), text: str = ""
           ) -> list[Route]:
    found = []
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            sub_ns = (*ns, entry.namespace) if entry.namespace else ns
            found += routes(entry, sub_ns, text + str(entry.pattern))
        elif entry.name:
            found.append(Route(":".join((*ns, entry.name)), _params(entry),
                               text + str(entry.pattern), admin=ns[:1] == ("admin",)))
    return found


@pytest.fixture
def world(sandbox_simulator, settings, superuser, outsider, lead, release_manager, auditor):
    """Real objects for every kind of URL parameter, with a live token for the reveal pages."""
    settings.IQMETRIX_ACCOUNTS_URLS = {"sandbox": sandbox_simulator.url,
                                       "production": sandbox_simulator.url}
    sandbox = onboard().package
    production = onboard(environment=Environment.PRODUCTION).package
    check_run(package=sandbox)
    other = onboard("Other Shop").package.integration
    grant = AccessGrant.objects.create(
        user=make_user("grantee"), role=Role.VIEW, integration=other,
        valid_until=timezone.now() + timedelta(days=1), reason="walk", granted_by=superuser)
    return {"packages": [sandbox, production], "integrations": [sandbox.integration],
            "grants": [grant]}


def objects_for(route: Route, world: dict) -> list[dict]:
    """Every way to fill the route's parameters with real objects."""
    fillings: list[dict] = [{}]
    for name in route.params:
        before = re.search(rf"([a-z_]+)/<(?:\w+:)?{name}>", route.segments)
        kind = before.group(1) if before else ""
        if name == "environment":
            values = [e.value for e in Environment]
        elif name in ("uuid", "pk") or name.endswith("_uuid"):
            values = [o.uuid for o in world.get(kind) or world["packages"]]
        elif route.admin:
            values = [admin_value(route, name, world)]
        elif name in ("number", "version"):
            values = [1]
        else:
            pytest.fail(f"url walker: no value for <{name}> in {route.name}; teach objects_for")
        fillings = [{**f, name: v} for f in fillings for v in values]
    return fillings


def every_page(client: Client, world: dict) -> Iterator[tuple[Route, str, HttpResponse]]:
    """(route, url, answer) of a GET of every URL with every filling, signing out left out
    (it would end the client's session)."""
    for route in routes():
        if route.name in ("logout", "admin:logout"):
            continue
        for kwargs in objects_for(route, world):
            url = reverse(route.name, kwargs=kwargs)
            yield route, url, client.get(url)


def admin_value(route: Route, name: str, world: dict) -> object:
    if name == "app_label":
        return "onboarding"
    if name == "url":
        return "no-such-page/"
    if name == "content_type_id":
        return ContentType.objects.get_for_model(world["integrations"][0]).pk
    for model in admin.site._registry:
        if route.name.startswith(f"admin:{model._meta.app_label}_{model._meta.model_name}_"):
            first = model._default_manager.order_by("pk").first()
            return first.pk if first else 1
    return world["integrations"][0].pk


def object_kind(route: Route) -> str | None:
    if not route.params:
        return None
    return "package" if "packages/<" in route.segments else "object"


def test_every_url_answers_every_role_as_the_design_promises(world, request):
    users = {role: None if role == "anonymous" else request.getfixturevalue(role)
             for role in ROLES}
    problems: list[str] = []
    seen = 0
    clients = {role: Client(raise_request_exception=False) for role in ROLES}
    for role, user in users.items():
        if user is not None:
            clients[role].force_login(user)
    for route in routes():
        if route.name in ("logout", "admin:logout"):
            continue  # signing out is walked by the auth tests; it would end the session here
        for kwargs in objects_for(route, world):
            url = reverse(route.name, kwargs=kwargs)
            # Admin POSTs are the admin's own forms (delete confirmations...): GET only there.
            methods = ["get"] if route.admin else ["get", "post"]
            for role, client in clients.items():
                for method in methods:
                    seen += 1
                    response = getattr(client, method)(url)
                    problems += judge(route, url, role, method, response, kwargs)
    assert seen > 100
    assert not problems, "\n".join(problems)


# Pages with a precise expectation for GET (role → status); everything else follows the rules.
EXPECTED_GET = {
    "dashboard:access": {"outsider": 404, "lead": 403, "release_manager": 403, "auditor": 200,
                         "superuser": 200},
    "dashboard:audit": {"outsider": 404, "lead": 403, "release_manager": 403, "auditor": 200,
                        "superuser": 200},
    "dashboard:grant_new": {"outsider": 404, "lead": 403, "release_manager": 403,
                            "auditor": 403, "superuser": 200},
}
REVEAL_GET = {  # the reveal page, per environment
    "sandbox": {"outsider": 404, "lead": 200, "release_manager": 403, "auditor": 403,
                "superuser": 200},
    "production": {"outsider": 404, "lead": 403, "release_manager": 403, "auditor": 403,
                   "superuser": 200},
}
PUBLIC = {"login", "admin:login"}


def judge(route: Route, url: str, role: str, method: str, response, kwargs: dict) -> list[str]:
    status = response.status_code
    where = f"{method.upper()} {url} ({route.name}) as {role}: {status}"
    if status not in SAFE:
        return [f"{where}: unexpected status"]
    if status == 200 and "html" in response.get("Content-Type", ""):
        body = response.content.decode()
        # A comment or tag the engine did not take (Django's {# #} is one line only) is shown.
        leaked = [mark for mark in ("{#", "#}", "{%", "%}", "{{ ", " }}") if mark in body]
        if leaked:
            return [f"{where}: template syntax on the page: {leaked}"]
    if role == "anonymous":
        if route.name in PUBLIC:
            return []
        logins = ("/admin/login/", LOGIN) if route.admin else (LOGIN,)
        ok = status == 302 and response["Location"].startswith(logins)
        return [] if ok else [f"{where}: expected a redirect to sign in"]
    if route.admin:
        staff = role in ("release_manager", "superuser")
        if not staff and status == 200 and route.name != "admin:login":
            return [f"{where}: non-staff reached the admin"]
        return []
    expected = EXPECTED_GET.get(route.name, {}).get(role) if method == "get" else None
    if route.name == "dashboard:reveal" and method == "get":
        package = next(p for p in _packages(kwargs))
        expected = REVEAL_GET[package.environment][role]
    if expected is not None and status != expected:
        return [f"{where}: expected {expected}"]
    kind = object_kind(route)
    if role == "superuser" and method == "get" and status in (403, 404):
        return [f"{where}: a superuser may see everything"]
    if role == "outsider" and kind and status not in (404, 405):
        return [f"{where}: outsiders must get 404 for objects they cannot see"]
    if role == "auditor" and kind and method == "post" and status not in (403, 405):
        return [f"{where}: a read-only auditor must get 403 for actions"]
    return []


def _packages(kwargs: dict):
    from onboarding.models import OnboardingPackage

    return OnboardingPackage.objects.filter(uuid=kwargs.get("uuid"))
