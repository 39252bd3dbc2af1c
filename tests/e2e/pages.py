"""Helpers the end-to-end tests share: sign-in, screenshots, reading the countdown."""

from __future__ import annotations

import re
import time
from pathlib import Path

from onboarding.simulator import DEMO_ACCOUNT

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
USER_PASSWORD = "unused-in-tests-1234"  # tests/conftest.py make_user()


def login(page, username: str, password: str = USER_PASSWORD) -> None:
    """Sign in through the real form and land on the overview."""
    page.goto("/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/$"))


def paste(page, box, text: str) -> None:
    """Paste `text` into `box` as a lead does: through the clipboard, with Ctrl+V."""
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("text => navigator.clipboard.writeText(text)", text)
    box.focus()
    page.keyboard.press("ControlOrMeta+V")


def screenshot(page, name: str, *, width: int = 1440) -> Path:
    """A full-page PNG in docs/screenshots/ at the given width."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if page.viewport_size["width"] != width:
        page.set_viewport_size({"width": width, "height": 900})
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def seconds_left(text: str) -> int:
    """'11 h 59 min 58 s left' (static/js/app.js) as seconds."""
    parts = dict((unit, int(n)) for n, unit in re.findall(r"(\d+)\s*(h|min|s)\b", text))
    assert parts, f"no countdown in {text!r}"
    return parts.get("h", 0) * 3600 + parts.get("min", 0) * 60 + parts.get("s", 0)


def assert_counts_down(countdown, *, apart: float = 1.1, patience: float = 3.0) -> None:
    """Read the countdown, then again at least `apart` seconds later: it must have gone down.

    The page ticks once a second with setInterval, whose timing jitters in a busy headless
    browser, so the second reading may wait up to `patience` seconds for the next tick."""
    first = seconds_left(countdown.inner_text())
    started = time.monotonic()
    time.sleep(apart)
    second = seconds_left(countdown.inner_text())
    while second >= first and time.monotonic() - started < apart + patience:
        time.sleep(0.1)
        second = seconds_left(countdown.inner_text())
    assert 0 < second < first, f"the countdown stayed at {first} s"


def demo_credentials(**overrides: str) -> dict[str, str]:
    """The simulator's demo account as `onboard()` keyword arguments."""
    values = {"client_id": DEMO_ACCOUNT.client_id, "client_secret": DEMO_ACCOUNT.client_secret,
              "username": DEMO_ACCOUNT.username, "password": DEMO_ACCOUNT.password}
    values.update(overrides)
    return values
