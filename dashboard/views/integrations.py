"""One integration: both environments side by side, with configuration and recent checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from dashboard.access import integration_for
from dashboard.cards import Card, cards_for
from onboarding.models import (
    ConnectivityCheck,
    Environment,
    Integration,
    OnboardingPackage,
    PackageVersion,
)
from onboarding.services.checks import check_history
from onboarding.services.packages import credential_shown, package_versions
from onboarding.services.promotion import promotion_history

RECENT_CHECKS = 5
RECENT_PROMOTIONS = 10


@dataclass(frozen=True)
class EnvironmentPanel:
    card: Card
    client_id: str
    username: str
    client_secret: str
    password: str
    recent: list[ConnectivityCheck]


@require_GET
def integration_detail(request: HttpRequest, uuid: UUID) -> HttpResponse:
    integration = integration_for(request, uuid=uuid)
    groups = cards_for(user=request.user,
                       integrations=Integration.objects.filter(pk=integration.pk))
    panels = [_panel(card) for group in groups for card in group.cards]
    # Listed on the Production card only, so read only for who sees that card.
    shows_production = any(p.card.status.environment == Environment.PRODUCTION for p in panels)
    return render(request, "dashboard/integration.html", {
        "integration": integration, "panels": panels, "return_to": request.get_full_path(),
        "promotions": promotion_history(integration=integration, limit=RECENT_PROMOTIONS)
        if shows_production else [],
    })


@require_GET
def sandbox_history(request: HttpRequest, uuid: UUID) -> HttpResponse:
    """Every Sandbox version (Production's are on its own history page, with rollbacks)."""
    integration = integration_for(request, uuid=uuid, environment=Environment.SANDBOX)
    return render(request, "dashboard/sandbox_history.html", {
        "integration": integration,
        "versions": package_versions(integration=integration, environment=Environment.SANDBOX),
    })


def recent_checks(package: OnboardingPackage | None) -> list[ConnectivityCheck]:
    """The newest checks the integration page lists under a card (its htmx swap too)."""
    return list(check_history(package=package)[:RECENT_CHECKS]) if package is not None else []


def _panel(card: Card) -> EnvironmentPanel:
    status: Any = card.status
    return EnvironmentPanel(
        card=card,
        **{name: credential_shown(version=status.version, name=name)
           for name in PackageVersion.CREDENTIAL_FIELDS},
        recent=recent_checks(status.package),
    )
