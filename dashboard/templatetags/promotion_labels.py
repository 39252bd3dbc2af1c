"""A promotion's names-only diff in words on the pages (the row and its audit event keep the
field codes): "Client ID, Company ID" rather than `client_id company_id`."""

from __future__ import annotations

from typing import Any

from django import template

from onboarding.services.fields import field_label
from onboarding.services.promotion import DiffStatus

register = template.Library()


@register.filter
def changed_fields(diff: list[dict[str, Any]]) -> list[str]:
    """{{ promotion.diff|changed_fields }}: the labels of the fields that were not unchanged."""
    return [field_label(row["field"], capitalised=True) for row in diff
            if row.get("status") != DiffStatus.UNCHANGED]


@register.filter
def field_labels(names: list[str] | tuple[str, ...]) -> list[str]:
    """{{ row.changed|field_labels|join:", " }}: field codes as the same words, in order."""
    return [field_label(name, capitalised=True) for name in names]
