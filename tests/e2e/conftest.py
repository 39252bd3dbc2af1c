"""End-to-end fixtures: Debian's Chromium driven by Playwright (sync API) against pytest-django's
live server, with the iQmetrix simulator as both accounts hosts.

Playwright's own browser download is not used: the tests launch the system `chromium` (installed
by `make chromium` / `.ci/run`). Without it the tests are skipped with that reason, never
silently.

Every test file marks itself `e2e` and uses a transactional database: the live server runs in
another thread, so rows must be committed. Each flush removes the default groups a data migration
made, so `default_groups` puts them back before every test. (Serialized rollback would do that,
but it is lost once Playwright's event loop runs: Django then hands this thread a fresh connection
wrapper without the serialized data.)

Screenshots of the main pages are written to docs/screenshots/ (tests/e2e/pages.py).
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from onboarding.simulator import DEMO_ACCOUNT, Simulator

WIDE = {"width": 1440, "height": 900}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        pytest.skip("Debian's chromium is not installed: run `make chromium` "
                    "(or apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running in this thread, and Django refuses
    # ORM calls from a thread with a running loop (SynchronousOnlyOperation). The tests' own
    # ORM calls are plain synchronous code, so allow them, for as long as the browser lives.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=executable, headless=True,
                                                  args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(autouse=True)
def default_groups(transactional_db) -> None:
    from django.contrib.auth.models import Group, Permission

    groups = importlib.import_module("onboarding.migrations.0002_default_groups").GROUPS
    for name, codenames in groups.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*Permission.objects.filter(
            content_type__app_label="onboarding", codename__in=codenames))


@pytest.fixture
def page(browser, live_server) -> Iterator[object]:
    context = browser.new_context(viewport=WIDE, base_url=live_server.url,
                                  timezone_id="America/Regina", locale="en-CA",
                                  accept_downloads=True)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    # A script error or a Content-Security-Policy refusal (an inline script or style slipped in)
    # fails the test that caused it.
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    tab.on("console", lambda message: problems.append(message.text)
           if message.type == "error" and "Content Security Policy" in message.text else None)
    yield tab
    context.close()
    assert not problems, problems


@pytest.fixture
def accounts_host(settings) -> Iterator[Simulator]:
    """The simulator as the Sandbox and the Production accounts host (it knows DEMO_ACCOUNT)."""
    sim = Simulator(host="127.0.0.1", port=0, accounts=[DEMO_ACCOUNT])
    sim.start()
    settings.IQMETRIX_ACCOUNTS_URLS = {"sandbox": sim.url, "production": sim.url}
    try:
        yield sim
    finally:
        sim.stop()
