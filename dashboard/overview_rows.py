"""The overview's rows, rendered once and then served from Django's cache until what they show
changes.

Rendering 25 integrations' cells costs about ten times a trivial page (model instances for every
package, version and check, then the cells' HTML); most visits see exactly what the previous
visit saw. So the rows are cached under a key made of everything they show (key-based
expiration: nothing is ever invalidated, a change makes a new key):

- the integrations of the page (id, uuid, name) and, per package, `status.STAMP_FIELDS` (its
  current version, newest check and token exchange, the check holding the live token, refresh
  token, failing since). Versions and
  checks are never edited once written, so the ids stand for their content. They are read with
  one cheap query (`package_stamps`), without building a model instance;
- what the user may do in each cell (view, Check now), the time zone and URL prefix, and the
  source of the templates and of the code that builds the cells, so a deployment that
  changes them never serves an old rendering.

What differs between two visits of the same rows is not cached: the CSRF token (a user's own,
never another's), the `next` path of the forms and the countdown's first text (seconds tick).
The rendering is stored split at those slots, which each visit fills in.

A miss renders from the full statuses and stores under the key made from those same statuses,
so a check that lands between the cheap read and the rendering never files new rows under an
old key. A cache that cannot be reached (a configured Redis down) costs a rendering, never the
page.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django
import jinja2
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils import timezone
from django.utils.html import escape

from dashboard.cards import cards_for, countdown_text
from onboarding.models import Environment, Integration, Role
from onboarding.services.access import roles_lookup
from onboarding.services.status import package_stamps, status_stamp

logger = logging.getLogger(__name__)

TEMPLATE = "dashboard/_rows.html"
_SLOT_NAME = re.compile(r"csrf|next|t[0-9.]+")  # a countdown's slot: t<expiry timestamp>
CACHE_SECONDS = 60 * 60  # rows nobody asks for again leave the cache; a change never waits on it


@dataclass(frozen=True)
class Rows:
    html: str  # safe to place as it is: Jinja2 escaped what it rendered
    any_cell: bool  # false: the page has nothing the user may see (the empty-state message)


@dataclass(frozen=True)
class _Rendered:
    # The rendering split at its slots: text, slot name, text, slot name, ..., text. A slot is
    # "csrf", "next" or "t<expiry timestamp>" (a countdown).
    parts: list[str]
    any_cell: bool


# What shapes a rendering besides the data: the templates and the code that builds the cells
# (their URLs, labels, time formats). A deployment that changes any of it must not be served
# an older rendering from a cache that outlives the processes (one configured with CACHE_URL).
_SOURCES = ("dashboard", "onboarding", "templates")


def _hash_sources() -> str:
    base = Path(settings.BASE_DIR)
    digest = hashlib.sha256(f"{django.__version__} {jinja2.__version__}".encode())
    for folder in _SOURCES:
        for path in sorted((base / folder).rglob("*")):
            if path.suffix in {".py", ".html"} and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


_deployed_revision = functools.cache(_hash_sources)


def _revision() -> str:
    # Read once per process in production (a deployment restarts the processes); at every
    # visit under DEBUG, where a template edited under runserver does not restart it.
    return _hash_sources() if settings.DEBUG else _deployed_revision()


def _key(*, integrations: Sequence[Integration], stamps: Sequence[Sequence[Any]],
         permissions: Sequence[tuple[int, str, bool, bool]]) -> str:
    # Each part as the repr of a tuple: no name or value can pose as a separator.
    digest = hashlib.sha256(repr((_revision(), get_script_prefix(),
                                  str(timezone.get_current_timezone()))).encode())
    for integration in integrations:
        digest.update(repr((integration.pk, str(integration.uuid), integration.name)).encode())
    # Text, as the cheap read and the statuses may give a value as different types.
    for stamp in sorted(repr(tuple(map(str, stamp))) for stamp in stamps):
        digest.update(stamp.encode())
    digest.update(repr(sorted(permissions)).encode())
    return "overview-rows:" + digest.hexdigest()


def _permissions(*, user: Any, integrations: Sequence[Integration]
                 ) -> list[tuple[int, str, bool, bool]]:
    """(integration, environment, may view, may check) of every cell: what `cards_for` decides
    from the user's roles, so users with the same rights share a rendering."""
    roles = roles_lookup(user=user)
    cells = []
    for integration in integrations:
        for environment in Environment:
            held = roles(environment, integration)
            cells.append((integration.pk, environment.value, Role.VIEW.value in held,
                          Role.CHECK.value in held))
    return cells


def _render(*, request: HttpRequest, integrations: Sequence[Integration],
            permissions: list[tuple[int, str, bool, bool]]) -> tuple[str, _Rendered]:
    # Random per rendering, so no text the rows show (a check's message) can pose as a slot.
    marker = f"\x00{secrets.token_hex(16)}:"
    groups = cards_for(user=request.user, integrations=integrations, countdown_slot=marker)
    stamps = [status_stamp(card.status) for group in groups for card in group.cards]
    # Statuses of cells the user may not view are not in `groups`; their packages' stamps are
    # left out of this key as they are of the request's (`_visible_stamps`).
    key = _key(integrations=integrations, stamps=[s for s in stamps if s is not None],
               permissions=permissions)
    html = render_to_string(TEMPLATE, {
        "groups": groups, "csrf_token": f"{marker}csrf\x00", "return_to": f"{marker}next\x00",
    }, using="jinja2")
    parts = re.split(f"{re.escape(marker)}({_SLOT_NAME.pattern})\x00", html)
    return key, _Rendered(parts=parts, any_cell=bool(groups))


def _visible_stamps(stamps: list[tuple], permissions: list[tuple[int, str, bool, bool]]
                    ) -> list[tuple]:
    visible = {(pk, environment) for pk, environment, may_view, _ in permissions if may_view}
    # A stamp starts with (integration_id, environment): see status.STAMP_FIELDS.
    return [stamp for stamp in stamps if (stamp[0], stamp[1]) in visible]


def _cached(key: str) -> _Rendered | None:
    try:
        found = cache.get(key)
    except Exception as exc:  # any backend's connection error: render instead
        logger.warning("overview rows: the cache could not be read (%s)", type(exc).__name__)
        return None
    if not isinstance(found, _Rendered):
        return None
    # Only slots this code fills (a rendering stored by other code is rendered anew, not a 500).
    slots = found.parts[1::2]
    return found if all(_SLOT_NAME.fullmatch(slot) for slot in slots) else None


def _store(key: str, rendered: _Rendered) -> None:
    try:
        cache.set(key, rendered, CACHE_SECONDS)
    except Exception as exc:
        logger.warning("overview rows: the cache could not be written (%s)", type(exc).__name__)


def _filled(rendered: _Rendered, *, request: HttpRequest) -> str:
    """The rendering with this visit's CSRF token, `next` path and countdown texts."""
    now = timezone.now()
    values = {"csrf": get_token(request), "next": escape(request.get_full_path())}
    parts = rendered.parts.copy()
    for index in range(1, len(parts), 2):
        slot = parts[index]
        parts[index] = values[slot] if slot in values else countdown_text(
            expires_at=datetime.fromtimestamp(float(slot[1:]), tz=UTC), now=now)
    return "".join(parts)


def overview_rows(*, request: HttpRequest, integrations: Sequence[Integration]) -> Rows:
    """The rows of one overview page, from the cache when nothing they show has changed."""
    integrations = list(integrations)
    if not integrations:
        return Rows(html="", any_cell=False)
    permissions = _permissions(user=request.user, integrations=integrations)
    stamps = _visible_stamps(package_stamps(integration_ids=[i.pk for i in integrations]),
                             permissions)
    key = _key(integrations=integrations, stamps=stamps, permissions=permissions)
    rendered = _cached(key)
    if rendered is None:
        key, rendered = _render(request=request, integrations=integrations,
                                permissions=permissions)
        _store(key, rendered)
    return Rows(html=_filled(rendered, request=request), any_cell=rendered.any_cell)

