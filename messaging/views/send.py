"""The send page (community managers).

The send page is one URL: GET shows the app picker and, for a chosen app, its kinds
and the fields of one kind; POST previews (the exact request body), goes back to
edit, or confirms. htmx requests get only the ``send-panel`` partial
so picking an app or a kind swaps the panel in place.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from liveadmin.http import AuthedHtmxRequest, wants_fragment
from liveadmin.roles import Role, role_required
from messaging.forms.send import (
    KIND_INTRO,
    SendForm,
    SendPlan,
    kinds_for,
    template_initial,
)
from messaging.models import Batch, BatchStatus, MessageTemplate, ProviderApp, SendKind
from messaging.providers import explain
from messaging.rooms import room_id_error
from messaging.services import batches, throughput
from messaging.services.sending import SendValidationError, send_message

logger = logging.getLogger(__name__)


def _int_or_none(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() else None


def _get_enabled_app(raw: str | None) -> ProviderApp | None:
    """The enabled app named by a request parameter; None when none was picked."""
    pk = _int_or_none(raw)
    if pk is None:
        return None
    return get_object_or_404(ProviderApp, pk=pk, enabled=True)


def _render_send(request: AuthedHtmxRequest, context: dict[str, Any]) -> HttpResponse:
    template = "messaging/send.html"
    if wants_fragment(request):
        template += "#send-panel"
    return render(request, template, context)


def _log_entry_url(record_pk: int) -> str:
    """The send log's page of one entry (the audit pages may not be installed)."""
    try:
        return reverse("messaging:audit-detail", args=[record_pk])
    except NoReverseMatch:
        try:
            return reverse("messaging:audit")
        except NoReverseMatch:
            return ""


def _preview_context(form: SendForm) -> dict[str, Any]:
    plan: SendPlan = form.plan  # type: ignore[assignment]
    app, kind = form.app, form.kind
    context: dict[str, Any] = {
        "plan": plan,
        "body_json": json.dumps(plan.body, indent=2, ensure_ascii=False),
        "carried": form.carried_values(),
        "room_count": len(plan.rooms),
        "is_batch": _is_batch(app, kind, plan),
        "needs_approval": kind == SendKind.BROADCAST
        and app.broadcast_requires_approval,
    }
    if len(plan.rooms) > 1:
        context["estimate"] = throughput.describe_estimate(app, kind, len(plan.rooms))
    if plan.scheduled_at:
        # Formatted here: the |date filter would convert back to the server's zone.
        local = plan.scheduled_at.astimezone(ZoneInfo(plan.tz_name))
        # A date format (Django's letters) each language orders its own way:
        # "Thu 31 Dec 2026, 18:00" in English.
        context["scheduled_local"] = formats.date_format(
            local, pgettext("scheduled send time format", "D j M Y, H:i")
        )
        context["scheduled_utc"] = f"{plan.scheduled_at:%H:%M}"
    return context


def _is_batch(app: ProviderApp, kind: str, plan: SendPlan) -> bool:
    """Whether the confirmed send goes through a batch instead of right away.

    Many rooms, a scheduled time, or a broadcast waiting for a second manager's
    approval all need the batch machinery; one room now is sent in the request.
    """
    if plan.scheduled_at is not None or len(plan.rooms) > 1:
        return True
    return kind == SendKind.BROADCAST and app.broadcast_requires_approval


def _initial_from(data: QueryDict, template: MessageTemplate | None) -> dict[str, Any]:
    initial: dict[str, Any] = {
        k: v for k, v in data.items() if k not in ("csrfmiddlewaretoken",)
    }
    if template is not None:
        # An empty template field keeps the form's default (the app's sender).
        initial.update({k: v for k, v in template_initial(template).items() if v})
        initial["template"] = template.pk
    return initial


@login_required
@role_required(Role.MANAGER)
@vary_on_headers("HX-Request")
def send(request: AuthedHtmxRequest) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    app = _get_enabled_app(source.get("app"))
    context: dict[str, Any] = {
        "apps": ProviderApp.objects.filter(enabled=True),
        "app": app,
        "step": "form",
    }
    if app is None:
        return _render_send(request, context)
    kinds = kinds_for(app)
    kind = source.get("kind")
    kind = SendKind(kind) if kind in kinds else kinds[0]
    context.update(kinds=kinds, kind=kind, kind_intro=KIND_INTRO[kind])
    action = request.POST.get("action", "preview") if request.method == "POST" else ""

    if request.method == "GET" or action == "template":
        template = (
            MessageTemplate.objects.usable_for(app, kind)
            .filter(pk=_int_or_none(source.get("template")))
            .first()
        )
        form = SendForm(initial=_initial_from(source, template), app=app, kind=kind)
    elif action == "edit":
        form = SendForm(request.POST, app=app, kind=kind)
    else:
        form = SendForm(request.POST, request.FILES, app=app, kind=kind)
        if form.is_valid():
            if action == "confirm":
                return _confirm(request, form, context)
            context.update(step="preview", **_preview_context(form))
            if action == "test":
                context.update(_send_test(request, form))
    context["form"] = form
    return _render_send(request, context)


def _send_test(request: AuthedHtmxRequest, form: SendForm) -> dict[str, Any]:
    """Send the exact previewed message to one room the manager names, before the
    batch starts (it is a real send, recorded in the send log)."""
    plan: SendPlan = form.plan  # type: ignore[assignment]
    room = request.POST.get("test_room", "").strip()
    error = _("Enter the room to send the test to.") if not room else None
    error = error or room_id_error(room, form.app.provider)
    if error:
        return {"test_room": room, "test_error": error}
    try:
        record, result = send_message(
            form.app, form.kind, plan.request_fields(room), actor=request.user
        )
    except SendValidationError as exc:
        return {"test_room": room, "test_error": str(exc)}
    logger.info(
        "test send record=%s app=%s kind=%s user=%s",
        record.pk,
        form.app.pk,
        form.kind,
        request.user.pk,
    )
    return {
        "test_room": room,
        "test_record": record,
        "test_result": result,
        "test_explanation": result.explanation
        or explain(form.app.provider, result.error_code),
    }


def _confirm(
    request: AuthedHtmxRequest, form: SendForm, context: dict[str, Any]
) -> HttpResponse:
    plan: SendPlan = form.plan  # type: ignore[assignment]
    app, kind = form.app, form.kind
    if _is_batch(app, kind, plan):
        rooms = [] if kind == SendKind.BROADCAST else plan.rooms
        try:
            batch = batches.start_batch(
                app,
                kind,
                plan.fields,
                rooms,
                actor=request.user,
                scheduled_at=plan.scheduled_at,
            )
        except SendValidationError as exc:
            form.add_send_errors(exc.errors)
            context["form"] = form
            return _render_send(request, context)
        except batches.BatchError as exc:
            form.add_error(None, str(exc))
            context["form"] = form
            return _render_send(request, context)
        logger.info(
            "batch started batch=%s app=%s kind=%s rooms=%s user=%s",
            batch.pk,
            app.pk,
            kind,
            len(rooms),
            request.user.pk,
        )
        messages.success(request, _batch_message(batch, len(rooms)))
        url = reverse("messaging:batch-detail", args=[batch.pk])
        if request.htmx:
            return HttpResponseClientRedirect(url)
        return redirect(url)
    room = plan.rooms[0] if plan.rooms else None
    try:
        record, result = send_message(
            app, kind, plan.request_fields(room), actor=request.user
        )
    except SendValidationError as exc:
        # The request changed between preview and confirm (for example the app).
        form.add_send_errors(exc.errors)
        context["form"] = form
        return _render_send(request, context)
    context.update(
        step="result",
        form=form,
        record=record,
        result=result,
        explanation=result.explanation or explain(app.provider, result.error_code),
        log_url=_log_entry_url(record.pk),
    )
    return _render_send(request, context)


def _batch_message(batch: Batch, rooms: int) -> str:
    """Say what happened: started, scheduled, or submitted for approval."""
    if batch.kind == SendKind.BROADCAST and not rooms:
        if batch.status == BatchStatus.AWAITING_APPROVAL:
            return _(
                "Broadcast submitted for approval: another community manager must "
                "approve it before it goes out."
            )
        if batch.status == BatchStatus.SCHEDULED:
            return _("Broadcast scheduled.")
        return _("Broadcast started.")
    values = {"count": f"{rooms:,}"}
    if batch.status == BatchStatus.AWAITING_APPROVAL:
        return (
            ngettext(
                "Batch of %(count)s room submitted for approval: another community "
                "manager must approve it before it goes out.",
                "Batch of %(count)s rooms submitted for approval: another community "
                "manager must approve it before it goes out.",
                rooms,
            )
            % values
        )
    if batch.status == BatchStatus.SCHEDULED:
        return (
            ngettext(
                "Batch of %(count)s room scheduled.",
                "Batch of %(count)s rooms scheduled.",
                rooms,
            )
            % values
        )
    return (
        ngettext(
            "Batch of %(count)s room started.",
            "Batch of %(count)s rooms started.",
            rooms,
        )
        % values
    )
