"""The overview page, rendered once and then served from Django's cache until what it shows
changes.

Rendering 25 integrations' cells costs about ten times a trivial page (model instances for every
package, version and check, then the cells' HTML), and the page around them in Django templates
as much as the rest of a cached visit; most visits see exactly what the previous visit saw. So
both are cached under keys made of everything they show (key-based expiration: nothing is ever
invalidated, a change makes a new key), at two levels:

- **The rows**, shared by every user with the same rights, under a key made of the integrations
  of the page (id, uuid, name) and, per package, `status.STAMP_FIELDS` (its current version,
  newest check and token exchange, the check holding the live token, refresh token, failing
  since). Versions and checks are never edited once written, so the ids stand for their
  content. They are read with one cheap query (`package_stamps`), without building a model
  instance. The key also holds what the user may do in each cell (view, Check now), the time
  zone and URL prefix, and the source of the templates and of the code that builds the cells,
  so a deployment that changes them never serves an old rendering.
- **The page**: those rows in the layout (templates/base.html) and the overview's heading and
  empty-state text, under the rows' key plus everything the page shows of the user (`_layout`:
  user name, staff and superuser status, permissions, whether they may add a package).

What differs between two visits of the same page is not cached: the CSRF token (a user's own,
never another's), the `next` path of the forms, the countdown's first text (seconds tick), the
flash messages (shown once) and the links to the other pages (they keep the address's other
parameters). A rendering is stored split at those slots, which each visit fills in.

A miss renders the rows from the full statuses and stores them under the key made from those
same statuses, so a check that lands between the cheap read and the rendering never files new
rows under an old key; the page is filed under that key too. A cache that cannot be reached (a
configured Redis down) costs a rendering, never the page.
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
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import DEFAULT_DB_ALIAS
from django.db.models import Count, Value
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.urls import get_script_prefix
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from dashboard.cards import cards_for, countdown_text
from onboarding.compiled import CompiledQuery
from onboarding.models import Environment, Integration, Role
from onboarding.services.access import (
    can,
    granted_integration_ids,
    has_any_access,
    roles_lookup,
    sees_every_integration,
    visible_integrations,
)
from onboarding.services.status import package_stamps, status_stamp

logger = logging.getLogger(__name__)

# 25 rows of at most two cells: a page costs the same at 10 or 10,000 integrations, and little.
INTEGRATIONS_PER_PAGE = 25
_INTEGRATION_FIELDS = ("id", "uuid", "name")  # what the rows show of an integration

TEMPLATE = "dashboard/_rows.html"  # Jinja2
PAGE_TEMPLATE = "dashboard/overview.html"
MESSAGES_TEMPLATE = "_messages.html"
PAGINATION_TEMPLATE = "dashboard/_pagination.html"
# The slots this code fills; a countdown's is t<expiry timestamp>, "t" in `_Rendered.slots`.
_SLOTS = frozenset({"csrf", "next", "messages", "pages", "t"})
_SLOT = re.compile(r"(csrf|next|messages|pages|t[0-9.]+)\x00")
CACHE_SECONDS = 60 * 60  # renderings nobody asks for again leave the cache; a change never waits


@dataclass(frozen=True)
class _Rendered:
    # The rendering split at its slots: text, slot name, text, slot name, ..., text.
    parts: list[str]
    slots: frozenset[str]  # the names of its slots ("t" for every countdown)
    any_cell: bool  # false: the page has nothing the user may see (the empty-state message)


def _rendered(html: str, *, marker: str, any_cell: bool) -> _Rendered:
    """A rendering whose slots are written as `marker`, the slot's name and a NUL. The marker is
    random per rendering, so no text the page shows (a check's message) can pose as a slot."""
    parts = re.split(re.escape(marker) + _SLOT.pattern, html)
    return _Rendered(parts=parts, any_cell=any_cell,
                     slots=frozenset("t" if name[0] == "t" else name for name in parts[1::2]))


def _joined(rendered: _Rendered, *, marker: str) -> str:
    """The rendering as one text again, its slots written with `marker`."""
    return "".join(part if index % 2 == 0 else f"{marker}{part}\x00"
                   for index, part in enumerate(rendered.parts))


# What shapes a rendering besides the data: the templates and the code that builds the cells
# (their URLs, labels, time formats), and the static files, whose names in the layout's links
# carry a hash of their content (ManifestStaticFilesStorage). A deployment that changes any of
# it must not be served an older rendering from a cache that outlives the processes (one
# configured with CACHE_URL): its links would name files the new deployment no longer has.
_SOURCES = ("dashboard", "onboarding", "templates")  # their .py and .html files
_ASSETS = ("static",)  # every file


def _hash_sources() -> str:
    base = Path(settings.BASE_DIR)
    digest = hashlib.sha256(f"{django.__version__} {jinja2.__version__}".encode())
    for folder in (*_SOURCES, *_ASSETS):
        for path in sorted((base / folder).rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if folder in _ASSETS or path.suffix in {".py", ".html"}:
                digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# Read once per process, as it starts (DashboardConfig.ready).
deployed_revision = functools.cache(_hash_sources)


def _revision() -> str:
    # Read once per process in production (a deployment restarts the processes); at every
    # visit under DEBUG, where a template edited under runserver does not restart it.
    return _hash_sources() if settings.DEBUG else deployed_revision()


def _key(*, integrations: Sequence[Integration], stamps: Sequence[Sequence[Any]],
         permissions: Rights) -> str:
    # Each part as the repr of a tuple: no name or value can pose as a separator.
    digest = hashlib.sha256(repr((_revision(), get_script_prefix(),
                                  str(timezone.get_current_timezone()))).encode())
    for integration in integrations:
        digest.update(repr((integration.pk, str(integration.uuid), integration.name)).encode())
    # Sorted, as the cheap read and the statuses list them in different orders (a stamp's first
    # values, integration, environment and package, tell any two apart). Both give every value
    # as the same type (tests/test_compiled.py).
    digest.update(repr(sorted(map(tuple, stamps))).encode())
    digest.update(repr(permissions).encode())
    return "overview-rows:" + digest.hexdigest()


_ENVIRONMENTS = tuple(env.value for env in Environment)


# (environment, may view, may check) per environment, then (integration, environment, may view,
# may check) per cell of an integration a grant names, where they can differ from the former.
Rights = tuple[tuple[tuple[str, bool, bool], ...], tuple[tuple[int, str, bool, bool], ...]]


def _permissions(*, user: Any, integrations: Sequence[Integration]) -> Rights:
    """What `cards_for` decides from the user's roles in each cell (view, Check now), so users
    with the same rights share a rendering."""
    roles = roles_lookup(user=user)
    granted = granted_integration_ids(user=user)
    view, check = Role.VIEW.value, Role.CHECK.value
    anywhere = tuple((environment, view in held, check in held)
                     for environment in _ENVIRONMENTS for held in [roles(environment, None)])
    cells = tuple((integration.pk, environment, view in held, check in held)
                  for integration in integrations if integration.pk in granted
                  for environment in _ENVIRONMENTS for held in [roles(environment, integration)])
    return anywhere, cells


def _render(*, request: HttpRequest, integrations: Sequence[Integration],
            permissions: Rights) -> tuple[str, _Rendered]:
    """The rows, and the key made of the statuses they were rendered from."""
    marker = f"\x00{secrets.token_hex(16)}:"
    groups = cards_for(user=request.user, integrations=integrations, countdown_slot=marker)
    stamps = [status_stamp(card.status) for group in groups for card in group.cards]
    # Statuses of cells the user may not view are not in `groups`; their packages' stamps are
    # left out of this key as they are of the request's (`_visible_stamps`).
    key = _key(integrations=integrations, stamps=[s for s in stamps if s is not None],
               permissions=permissions)
    html = render_to_string(TEMPLATE, {
        "groups": groups, "csrf_token": f"{marker}csrf\x00", "return_to": f"{marker}next\x00",
    }, using="jinja2") if groups else ""
    return key, _rendered(html, marker=marker, any_cell=bool(groups))


# Most users see every integration: their page of them is compiled once per page number.
_every_integration = CompiledQuery(
    lambda *, offset, limit: Integration.objects.order_by("name").values_list(
        *_INTEGRATION_FIELDS)[offset:offset + limit],
    literals=("offset", "limit"))


# How many there are, compiled too: grouped by a constant, which Django leaves out of the SQL
# (SELECT COUNT(*) FROM ...), so the answer is always one row, 0 included. COUNT(*), as the
# ORM's count() asks: SQLite answers it from the table's b-tree in microseconds, where
# COUNT("id") reads every row (0.24 ms at 10,000 integrations).
_every_integration_count = CompiledQuery(lambda: Integration.objects.order_by().values(
    k=Value(1)).annotate(n=Count("*")).values_list("n"))


def _page(*, user: Any, page_number: str | None) -> tuple[Page, list[Integration]]:
    """The page of integrations the visit asks for, and its integrations. For someone who sees
    them all, the count and the page are read with compiled SQL, and the paginator pages a
    range of numbers standing in for them; for someone whose grants name a few, the ORM's."""
    if not sees_every_integration(user=user):
        visible = visible_integrations(user=user).order_by("name").only("pk", "uuid", "name")
        page = Paginator(visible, INTEGRATIONS_PER_PAGE).get_page(page_number)
        return page, list(page.object_list)
    count = _every_integration_count.rows()[0][0]
    page = Paginator(range(count), INTEGRATIONS_PER_PAGE).get_page(page_number)
    if not count:  # nothing to ask for
        return page, []
    rows = _every_integration.rows(offset=(page.number - 1) * INTEGRATIONS_PER_PAGE,
                                   limit=INTEGRATIONS_PER_PAGE)
    return page, [Integration.from_db(DEFAULT_DB_ALIAS, _INTEGRATION_FIELDS, row) for row in rows]


def _layout(user: Any) -> dict[str, Any]:
    """What the page around the rows shows of the user: the header of templates/base.html (the
    name, and the links that staff status and permissions give) and the overview's heading and
    empty-state text. All of it goes into the page's key, so a user renamed or given other
    rights gets a page of their own at the next visit."""
    return {
        "user_shown": (user.pk, user.get_username(), user.is_active, user.is_staff,
                       user.is_superuser, tuple(sorted(user.get_all_permissions()))),
        "can_add_package": any(can(user=user, action=Role.EDIT, environment=env)
                               for env in Environment),
        "can_add": user.has_perm("onboarding.add_integration"),
        # Asked for the empty page: there, no access and no integrations read differently.
        "no_access": not has_any_access(user=user),
    }


def _page_key(rows_key: str, layout: dict[str, Any]) -> str:
    digest = hashlib.sha256(repr((rows_key, sorted(layout.items()))).encode())
    return "overview-page:" + digest.hexdigest()


def _render_page(*, request: HttpRequest, rows: _Rendered, layout: dict[str, Any]
                 ) -> _Rendered:
    """The page around the rows, with the rows' slots kept and the page's own added."""
    marker = f"\x00{secrets.token_hex(16)}:"
    # Jinja2 escaped what it rendered, so the rows are safe to place as they are.
    rows_html = mark_safe(_joined(rows, marker=marker))  # noqa: S308
    html = render_to_string(PAGE_TEMPLATE, {
        "rows": rows_html, "any_cell": rows.any_cell, **layout,
        "csrf_token": f"{marker}csrf\x00",
        "messages_slot": mark_safe(f"{marker}messages\x00"),  # noqa: S308 (our own text)
        "pages_slot": mark_safe(f"{marker}pages\x00"),  # noqa: S308
    }, request=request)
    return _rendered(html, marker=marker, any_cell=rows.any_cell)


def _visible_stamps(stamps: list[tuple], permissions: Rights) -> list[tuple]:
    anywhere, cells = permissions
    may_view = {environment: view for environment, view, _ in anywhere}
    granted = {(pk, environment): view for pk, environment, view, _ in cells}
    # A stamp starts with (integration_id, environment): see status.STAMP_FIELDS.
    return [stamp for stamp in stamps
            if granted.get((stamp[0], stamp[1]), may_view.get(stamp[1], False))]


def _cached(key: str) -> _Rendered | None:
    try:
        found = cache.get(key)
    except Exception as exc:  # any backend's connection error: render instead
        logger.warning("overview: the cache could not be read (%s)", type(exc).__name__)
        return None
    # Only slots this code fills (a rendering stored by other code is rendered anew, not a 500).
    if not isinstance(found, _Rendered) or not found.slots <= _SLOTS:
        return None
    return found


def _store(key: str, rendered: _Rendered) -> None:
    try:
        cache.set(key, rendered, CACHE_SECONDS)
    except Exception as exc:
        logger.warning("overview: the cache could not be written (%s)", type(exc).__name__)


def _filled(rendered: _Rendered, *, request: HttpRequest, page: Page) -> str:
    """The rendering with this visit's CSRF token (one for every form), `next` path, flash
    messages, links to the other pages and countdown texts."""
    parts = rendered.parts.copy()
    values: dict[str, str] = {}
    now = timezone.now()
    for index in range(1, len(parts), 2):
        slot = parts[index]
        value = values.get(slot)
        if value is None:
            value = values[slot] = _slot_value(slot, request=request, page=page, now=now)
        parts[index] = value
    return "".join(parts)


def _slot_value(slot: str, *, request: HttpRequest, page: Page, now: datetime) -> str:
    if slot == "csrf":
        return get_token(request)
    if slot == "next":
        return escape(request.get_full_path())
    if slot == "messages":
        shown = get_messages(request)  # iterated by the template: shown once, as anywhere
        return render_to_string(MESSAGES_TEMPLATE, {"messages": shown}) if shown else ""
    if slot == "pages":
        return (render_to_string(PAGINATION_TEMPLATE, {"page": page}, request=request)
                if page.paginator.num_pages > 1 else "")
    return countdown_text(expires_at=datetime.fromtimestamp(float(slot[1:]), tz=UTC), now=now)


def overview_page(*, request: HttpRequest, page_number: str | None) -> str:
    """The overview's HTML for one page of integrations, from the cache when nothing it shows
    has changed."""
    page, integrations = _page(user=request.user, page_number=page_number)
    permissions = _permissions(user=request.user, integrations=integrations)
    stamps = _visible_stamps(package_stamps(integration_ids=[i.pk for i in integrations]),
                             permissions)
    rows_key = _key(integrations=integrations, stamps=stamps, permissions=permissions)
    layout = _layout(request.user)
    rendered = _cached(_page_key(rows_key, layout))
    if rendered is None:
        rows = _cached(rows_key)
        if rows is None:
            rows_key, rows = _render(request=request, integrations=integrations,
                                     permissions=permissions)
            _store(rows_key, rows)
        rendered = _render_page(request=request, rows=rows, layout=layout)
        _store(_page_key(rows_key, layout), rendered)
    return _filled(rendered, request=request, page=page)
