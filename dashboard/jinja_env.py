"""The Jinja2 environment of the few templates rendered with Jinja2 (see TEMPLATES in settings).

Autoescaping is always on, whatever the options say, and an undefined name is an error rather
than an empty string, so a typo in a template fails its test instead of rendering a blank.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, StrictUndefined


def environment(**options: Any) -> Environment:
    options.update(autoescape=True, undefined=StrictUndefined)
    return Environment(**options)  # noqa: S701 (autoescape is set on the line above)
