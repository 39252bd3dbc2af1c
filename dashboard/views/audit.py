"""The audit log: filter, page through, and export (CSV, JSON Lines). Exports are audited."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from dashboard.access import require_oversight
from onboarding.models import AuditEvent, Environment
from onboarding.services.audit import (
    EXPORT_FIELDS,
    AuditAction,
    RequestMeta,
    audit_event_row,
    audit_export_record,
    audit_page,
    audit_rows,
    audit_search,
    csv_cell,
)

AUDIT_PERMISSION = "onboarding.view_auditevent"
EVENTS_PER_PAGE = 50


class AuditFilterForm(forms.Form):
    # Whole names: each is matched by an index, whatever the log's size.
    actor = forms.CharField(required=False, max_length=150, label="Actor",
                            help_text="The whole user name, in any case.")
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
    environment = forms.ChoiceField(required=False,
                                    choices=[("", "Any environment"), *Environment.choices])
    integration = forms.CharField(required=False, max_length=120, label="Integration",
                                  help_text="The whole name or slug, in any case.")
    since = forms.DateField(required=False, label="From",
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To",
                            widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The dates are days in the site's time zone, while the page shows each event's time
        # in the browser's: say which zone, or a day's last events seem to be left out.
        zone = timezone.get_current_timezone_name()
        self.fields["since"].help_text = f"From the start of this day, {zone} time."
        self.fields["until"].help_text = f"Through the end of this day, {zone} time."

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return cleaned


def _filtered(request: HttpRequest) -> tuple[AuditFilterForm, Any]:
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return form, AuditEvent.objects.none()
    return form, audit_search(**form.cleaned_data)


@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    require_oversight(request, permission=AUDIT_PERMISSION)
    form, events = _filtered(request)
    page = Paginator(events, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "dashboard/audit_log.html", {
        "form": form, "page": page, "events": audit_page(page.object_list),
    }, status=200 if form.is_valid() else 400)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_lines(events: Any) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for event in audit_rows(events, batch_size=500):
        row = audit_event_row(event)
        row["details"] = json.dumps(row["details"], sort_keys=True, cls=DjangoJSONEncoder)
        yield writer.writerow([csv_cell(row[name]) for name in EXPORT_FIELDS])


def _jsonl_lines(events: Any) -> Iterator[str]:
    for event in audit_rows(events, batch_size=500):
        yield json.dumps(audit_event_row(event), cls=DjangoJSONEncoder) + "\n"


@require_GET
def audit_export_csv(request: HttpRequest) -> HttpResponse:
    return _export(request, "csv", _csv_lines, "text/csv; charset=utf-8")


@require_GET
def audit_export_jsonl(request: HttpRequest) -> HttpResponse:
    return _export(request, "jsonl", _jsonl_lines, "application/jsonl; charset=utf-8")


def _export(request: HttpRequest, fmt: str, lines: Any, content_type: str) -> HttpResponse:
    require_oversight(request, permission=AUDIT_PERMISSION)
    form, events = _filtered(request)
    if not form.is_valid():
        return render(request, "dashboard/audit_log.html",
                      {"form": form, "page": None}, status=400)
    audit_export_record(actor=request.user, fmt=fmt, filters=form.cleaned_data,
                        meta=RequestMeta.from_request(request))
    # Oldest first, in the chain's order, so an export can be re-verified line by line.
    response = StreamingHttpResponse(lines(events), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit-log.{fmt}"'
    return response
