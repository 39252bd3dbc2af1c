"""The overview: every integration the user may see, one compact row each, with a cell per
environment it may view (state, version, last check, token countdown, failing since, Check now).
The full card with every link is on the integration page.

Cards are built here for every page that shows them (overview, integration page, the htmx swap
after a check), always with the same fixed number of queries whatever the number of integrations,
and with the user's roles worked out once per page rather than once per card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timeuntil

from onboarding.models import Environment, Integration, ProductionState, Role
from onboarding.services.access import roles_lookup, visible_integrations
from onboarding.services.checks import check_refresh_held
from onboarding.services.status import PackageStatus, package_statuses

# 25 rows of at most two cells: a page costs the same at 10 or 10,000 integrations, and little.
INTEGRATIONS_PER_PAGE = 25


@dataclass(frozen=True)
class When:
    """A moment as the compact cells show it: the same text `_time.html` renders, worked out in
    Python because date filters are most of a template's cost when a page shows fifty cells."""

    iso: str
    utc: str
    local: str

    @classmethod
    def of(cls, at: datetime | None) -> When | None:
        if at is None:
            return None
        local = timezone.localtime(at)
        return cls(iso=local.isoformat(), utc=at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                   local=f"{local:%Y-%m-%d %H:%M} {local.tzname()}")


@dataclass(frozen=True)
class Card:
    """One environment of one integration as the user may see it."""

    status: PackageStatus
    can_check: bool
    refresh_held: bool
    error: str = ""

    @cached_property
    def dom_id(self) -> str:
        return f"card-{self.status.integration.uuid}-{self.status.environment.value}"

    @property
    def verified(self) -> bool:
        return self.status.state == ProductionState.VERIFIED

    @property
    def token_expired(self) -> bool:
        expires_at = self.status.expires_at
        return expires_at is not None and expires_at <= timezone.now()

    @property
    def failing_since(self) -> Any:
        package = self.status.package
        return package.failing_since if package is not None else None

    # For the compact cell (`_cell.html`).

    @cached_property
    def checked(self) -> When | None:
        check = self.status.last_check
        return When.of(check.sent_at if check is not None else None)

    @cached_property
    def expires(self) -> When | None:
        return When.of(self.status.expires_at)

    @cached_property
    def failing(self) -> When | None:
        return When.of(self.failing_since)

    @cached_property
    def check_url(self) -> str:
        return reverse("dashboard:check_run", args=[self.status.package.uuid])

    @cached_property
    def refresh_url(self) -> str:
        return reverse("dashboard:check_refresh", args=[self.status.package.uuid])

    @property
    def time_left(self) -> str:
        """The countdown's first text; static/js/app.js ticks it every second."""
        expires_at = self.status.expires_at
        if expires_at is None or self.token_expired:
            return "expired"
        return f"{timeuntil(expires_at)} left"


@dataclass(frozen=True)
class IntegrationCards:
    integration: Integration
    cards: list[Card]


def cards_for(*, user: Any, integrations: QuerySet[Integration]) -> list[IntegrationCards]:
    """Cards of every environment the user may view, integrations by name, Sandbox first."""
    statuses = package_statuses(integrations=integrations)
    held = check_refresh_held(package_ids=[s.package.pk for s in statuses if s.package])
    roles = roles_lookup(user=user)
    grouped: dict[int, IntegrationCards] = {}
    for status in statuses:
        integration = status.integration
        group = grouped.setdefault(integration.pk, IntegrationCards(integration, []))
        held_roles = roles(status.environment, integration)
        if Role.VIEW.value not in held_roles:
            continue
        has_credentials = status.version is not None and status.version.has_credentials
        group.cards.append(Card(
            status=status,
            can_check=has_credentials and Role.CHECK.value in held_roles,
            refresh_held=status.package is not None and status.package.pk in held,
        ))
    return [group for group in grouped.values() if group.cards]


def card_for(*, user: Any, integration: Integration, environment: Environment | str,
             error: str = "") -> Card | None:
    """The single card an htmx swap replaces."""
    for group in cards_for(user=user, integrations=Integration.objects.filter(pk=integration.pk)):
        for card in group.cards:
            if card.status.environment == Environment(environment):
                return Card(card.status, card.can_check, card.refresh_held, error=error)
    return None


def overview(request: HttpRequest) -> HttpResponse:
    visible = visible_integrations(user=request.user).order_by("name")
    page = Paginator(visible.only("pk"), INTEGRATIONS_PER_PAGE).get_page(request.GET.get("page"))
    ids = [integration.pk for integration in page.object_list]
    groups = cards_for(user=request.user, integrations=Integration.objects.filter(pk__in=ids))
    return render(request, "dashboard/overview.html", {
        "groups": groups, "page": page,
        "can_add": request.user.has_perm("onboarding.add_integration"),
        "return_to": request.get_full_path(),
    })
