"""Cards: one environment of one integration as a user may see it, for every page that shows
them (the overview's compact cells, the integration page's full cards, the htmx swap after a
check). Built with the same fixed number of queries whatever the number of integrations, and
with the user's roles worked out once per page rather than once per card.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cached_property
from typing import Any
from uuid import UUID

from django.urls import get_script_prefix, reverse
from django.utils import timezone

from onboarding.models import Environment, Integration, Role
from onboarding.services.access import roles_lookup
from onboarding.services.status import PackageStatus, check_outcome_label, package_statuses

_MARKER = UUID(int=0)


@functools.cache
def _around_uuid(name: str, script_prefix: str) -> tuple[str, str]:
    url = reverse(name, args=[_MARKER])
    head, _, tail = url.partition(str(_MARKER))
    return head, tail


def uuid_url(name: str, uuid: UUID) -> str:
    """`reverse(name, args=[uuid])` for a URL whose one argument is a UUID, without the resolver
    for every call: the overview makes three such URLs a row. Cached per script prefix, which
    is what else goes into a reversed URL."""
    head, tail = _around_uuid(name, get_script_prefix())
    return f"{head}{uuid}{tail}"


@dataclass(frozen=True)
class When:
    """A moment as the compact cells show it: the same text `_time.html` renders, worked out in
    Python because date filters are most of a template's cost when a page shows fifty cells."""

    iso: str
    utc: str
    local: str

    @classmethod
    def of(cls, at: datetime | None, *, tz: tzinfo | None = None) -> When | None:
        if at is None:
            return None
        local = at.astimezone(tz or timezone.get_current_timezone())
        return cls(iso=local.isoformat(), utc=at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                   local=f"{local:%Y-%m-%d %H:%M} {local.tzname()}")


@dataclass(frozen=True)
class Card:
    """One environment of one integration as the user may see it."""

    status: PackageStatus
    can_check: bool
    error: str = ""
    # The time zone the page shows times in, looked up once for all of a page's cards.
    tz: tzinfo | None = None
    # Set when the rendering is cached (dashboard/overview_page.py): the countdown's text is
    # then a marker that each visit replaces with its own `countdown_text`.
    countdown_slot: str = ""

    @cached_property
    def dom_id(self) -> str:
        return f"card-{self.status.integration.uuid}-{self.status.environment.value}"

    # The action buttons keep their ids across an htmx swap: htmx refocuses the element with
    # the id that had focus, so a keyboard user stays on the button instead of <body>.
    @property
    def check_button_id(self) -> str:
        return f"{self.dom_id}-check"

    @property
    def refresh_button_id(self) -> str:
        return f"{self.dom_id}-refresh"

    @property
    def refresh_held(self) -> bool:
        return self.status.refresh_held

    @property
    def token_expired(self) -> bool:
        expires_at = self.status.expires_at
        return expires_at is not None and expires_at <= timezone.now()

    @property
    def failing_since(self) -> Any:
        package = self.status.package
        return package.failing_since if package is not None else None

    # For the templates: the compact cell (templates/jinja2/dashboard/_cell.html) and, for
    # its action URLs, the full card (_card.html).

    @cached_property
    def outcome_label(self) -> str:
        check = self.status.last_check
        return check_outcome_label(check=check) if check is not None else ""

    @cached_property
    def checked(self) -> When | None:
        check = self.status.last_check
        return When.of(check.sent_at if check is not None else None, tz=self.tz)

    @cached_property
    def expires(self) -> When | None:
        return When.of(self.status.expires_at, tz=self.tz)

    @cached_property
    def token_issued(self) -> When | None:
        """When the countdown's token was issued, if by a check before the last one shown."""
        if not self.status.token_from_earlier_check:
            return None
        return When.of(self.status.token_check.sent_at, tz=self.tz)

    @cached_property
    def failing(self) -> When | None:
        return When.of(self.failing_since, tz=self.tz)

    @cached_property
    def check_url(self) -> str:
        return uuid_url("dashboard:check_run", self.status.package.uuid)

    @cached_property
    def refresh_url(self) -> str:
        return uuid_url("dashboard:check_refresh", self.status.package.uuid)

    @property
    def time_left(self) -> str:
        """The countdown's first text, in the words static/js/app.js ticks it in every second."""
        expires_at = self.status.expires_at
        if expires_at is None or self.token_expired:
            return "expired"
        if self.countdown_slot:
            return f"{self.countdown_slot}t{expires_at.timestamp()}\x00"
        return countdown_text(expires_at=expires_at, now=timezone.now())


def countdown_text(*, expires_at: datetime, now: datetime) -> str:
    seconds = int((expires_at - now).total_seconds())
    if seconds <= 0:
        return "expired"
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min {seconds:02d} s left"
    return f"{minutes} min {seconds:02d} s left"


@dataclass(frozen=True)
class IntegrationCards:
    integration: Integration
    cards: list[Card]

    @property
    def url(self) -> str:
        return uuid_url("dashboard:integration", self.integration.uuid)


def cards_for(*, user: Any, integrations: Iterable[Integration], countdown_slot: str = ""
              ) -> list[IntegrationCards]:
    """Cards of every environment the user may view, Sandbox first, in the integrations' order."""
    statuses = package_statuses(integrations=integrations)
    if not statuses:
        return []
    roles = roles_lookup(user=user)
    tz = timezone.get_current_timezone()
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
            tz=tz,
            countdown_slot=countdown_slot,
        ))
    return [group for group in grouped.values() if group.cards]


def card_for(*, user: Any, integration: Integration, environment: Environment | str,
             error: str = "") -> Card | None:
    """The single card an htmx swap replaces."""
    for group in cards_for(user=user, integrations=Integration.objects.filter(pk=integration.pk)):
        for card in group.cards:
            if card.status.environment == Environment(environment):
                return dataclasses.replace(card, error=error)
    return None
