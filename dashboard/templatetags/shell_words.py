"""Values placed in the shell commands the pages suggest (`manage.py onboard …`)."""

from __future__ import annotations

import shlex

from django import template

register = template.Library()


@register.filter
def shell_word(value: object) -> str:
    """{{ integration.slug|shell_word }}: one shell word, quoted if it needs to be.

    A command shown on a page gets copied into a terminal, so it must stay one harmless argument
    whatever the value holds: an integration name may contain quotes or `$(…)`, which HTML
    escaping leaves runnable. The result is still HTML-escaped by the template."""
    return shlex.quote(str(value))
