"""The overview: every integration the user may see, with a card per environment it may view.

Cards are built here for every page that shows them (overview, integration page, the htmx swap
after a check), always with the same fixed number of queries whatever the number of integrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from onboarding.models import Environment, Integration, ProductionState, Role
from onboarding.services.access import can, visible_integrations
from onboarding.services.checks import check_refresh_held
from onboarding.services.status import PackageStatus, package_statuses

INTEGRATIONS_PER_PAGE = 50


@dataclass(frozen=True)
class Card:
    """One environment of one integration as the user may see it."""

    status: PackageStatus
    can_check: bool
    refresh_held: bool
    error: str = ""

    @property
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


@dataclass(frozen=True)
class IntegrationCards:
    integration: Integration
    cards: list[Card]


def cards_for(*, user: Any, integrations: QuerySet[Integration]) -> list[IntegrationCards]:
    """Cards of every environment the user may view, integrations by name, Sandbox first."""
    statuses = package_statuses(integrations=integrations)
    held = check_refresh_held(package_ids=[s.package.pk for s in statuses if s.package])
    grouped: dict[int, IntegrationCards] = {}
    for status in statuses:
        integration = status.integration
        group = grouped.setdefault(integration.pk, IntegrationCards(integration, []))
        env = status.environment
        if not can(user=user, action=Role.VIEW, environment=env, integration=integration):
            continue
        has_credentials = status.version is not None and status.version.has_credentials
        group.cards.append(Card(
            status=status,
            can_check=has_credentials and can(user=user, action=Role.CHECK, environment=env,
                                              integration=integration),
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
