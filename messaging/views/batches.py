"""Batch pages: the list, the "Awaiting approval" list, a batch's live progress and
its controls.

The send log's rule applies (DESIGN.md roles): a community manager sees and acts on
the batches they made; broadcasts awaiting approval are visible to every manager
and only another manager approves one; administrators see every batch (read only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import (
    require_GET,
    require_http_methods,
    require_POST,
)
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from liveadmin.http import AuthedHtmxRequest
from liveadmin.roles import Role, has_role, role_required
from messaging.kinds import KINDS
from messaging.models import Batch, BatchStatus, Outcome, SendRecord
from messaging.services import batches, throughput
from messaging.services.sending import SendValidationError


def _get_batch_for_user(request: HttpRequest, pk: int) -> Batch:
    """A batch the user may see (404 otherwise)."""
    return get_object_or_404(
        Batch.objects.visible_to(request.user).select_related(
            "app", "created_by", "approved_by", "cancelled_by", "resend_of"
        ),
        pk=pk,
    )


def _get_own_batch(request: HttpRequest, pk: int) -> Batch:
    """A batch the user may act on: one they made (403 for one they only see)."""
    batch = _get_batch_for_user(request, pk)
    if batch.created_by_id != request.user.pk or not has_role(
        request.user, Role.MANAGER
    ):
        raise PermissionDenied(_("Only the manager who made this batch can change it."))
    return batch


def _with_counts(rows: list[Batch]) -> list[Batch]:
    """Attach each batch's rows by outcome (one grouped COUNT on (batch, outcome))."""
    counts: dict[int, dict[str, int]] = {
        b.pk: dict.fromkeys(Outcome.values, 0) for b in rows
    }
    grouped = (
        SendRecord.objects.filter(batch__in=rows)
        .order_by()
        .values_list("batch_id", "outcome")
        .annotate(n=Count("id"))
    )
    for batch_id, outcome, n in grouped:
        counts[batch_id][outcome] = n
    for batch in rows:
        batch.counts = counts[batch.pk]  # type: ignore[attr-defined]
    return rows


@login_required
@require_GET
@role_required(Role.MANAGER, Role.ADMIN)
def batch_list(request: HttpRequest) -> HttpResponse:
    qs = Batch.objects.visible_to(request.user).select_related("app", "created_by")
    status = request.GET.get("status", "")
    if status in BatchStatus.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "messaging/batch_list.html",
        {
            "page": page,
            "batches": _with_counts(list(page.object_list)),
            "status": status,
            "statuses": BatchStatus.choices,
        },
    )


@login_required
@require_GET
@role_required(Role.MANAGER)
def batch_approvals(request: HttpRequest) -> HttpResponse:
    """Broadcasts waiting for a second manager: every manager sees them."""
    qs = (
        Batch.objects.visible_to(request.user)
        .filter(status=BatchStatus.AWAITING_APPROVAL)
        .select_related("app", "created_by")
    )
    return render(
        request,
        "messaging/batch_approvals.html",
        {"batches": list(qs[:200])},
    )


def _message_fields(batch: Batch) -> list[tuple[str, str]]:
    """The batch's message as (label, value) pairs, in the send form's order."""
    labels = {f.name: f.label for f in KINDS[batch.kind].fields}
    return [
        (str(labels.get(name, name.replace("_", " ").capitalize())), str(value))
        for name, value in batch.fields.items()
        if value not in ("", None, []) and name != "random"
    ]


@login_required
@require_GET
@role_required(Role.MANAGER, Role.ADMIN)
@vary_on_headers("HX-Request")
def batch_detail(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    is_owner = batch.created_by_id == request.user.pk and has_role(
        request.user, Role.MANAGER
    )
    shown = SendRecord.objects.filter(
        batch=batch, outcome__in=[Outcome.FAILED, Outcome.UNKNOWN]
    ).order_by("id")
    context = {
        "batch": batch,
        "progress": batch.progress(),
        "message": _message_fields(batch),
        "estimate": throughput.describe_estimate(
            batch.app, batch.kind, batch.room_count
        ),
        "can_act": is_owner,
        "can_approve": (
            batch.status == BatchStatus.AWAITING_APPROVAL
            and batch.created_by_id != request.user.pk
            and has_role(request.user, Role.MANAGER)
        ),
        "problems": shown.only(
            "id", "room_id", "outcome", "error_code", "error_info", "attempts"
        )[:20],
    }
    if request.htmx:
        response = render(
            request, "messaging/batch_detail.html#batch-progress", context
        )
        if batch.is_finished:
            # Status 286: htmx swaps this last fragment and stops polling.
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "messaging/batch_detail.html", context)


def _act(
    request: HttpRequest,
    batch: Batch,
    action: Callable[..., Any],
    done: Callable[[Batch], str],
) -> HttpResponse:
    try:
        result = action(batch, actor=request.user)
    except batches.BatchError as exc:
        messages.error(request, str(exc))
        return redirect("messaging:batch-detail", pk=batch.pk)
    except SendValidationError as exc:
        messages.error(request, _("Could not re-send: %(error)s") % {"error": exc})
        return redirect("messaging:batch-detail", pk=batch.pk)
    target = result if isinstance(result, Batch) else batch
    messages.success(request, done(target))
    return redirect("messaging:batch-detail", pk=target.pk)


def _cancelled_message(batch: Batch) -> str:
    count = batch.records.filter(outcome=Outcome.CANCELLED).count()
    return ngettext(
        "Batch cancelled: %(count)s room will not be sent.",
        "Batch cancelled: %(count)s rooms will not be sent.",
        count,
    ) % {"count": f"{count:,}"}


@login_required
@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def batch_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation with the count; POST cancels."""
    batch = _get_own_batch(request, pk)
    pending = batches.rooms_not_yet_sent(batch)
    if request.method == "GET":
        return render(
            request,
            "messaging/batch_cancel.html",
            {"batch": batch, "pending": pending},
        )
    return _act(
        request,
        batch,
        batches.cancel,
        _cancelled_message,
    )


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        _get_own_batch(request, pk),
        batches.pause,
        lambda b: _(
            "Batch paused. Rooms already on their way finish; the others wait "
            "until you resume."
        ),
    )


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        _get_own_batch(request, pk),
        batches.resume,
        lambda b: (
            _("Batch resumed.")
            if b.status == BatchStatus.RUNNING
            else _("Batch resumed; it starts at its scheduled time.")
        ),
    )


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_resend(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        _get_own_batch(request, pk),
        batches.resend_failed,
        lambda b: (
            ngettext(
                "Re-sending the %(count)s room that failed, in this new batch.",
                "Re-sending the %(count)s rooms that failed, in this new batch.",
                b.room_count,
            )
            % {"count": f"{b.room_count:,}"}
        ),
    )


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_resend_unknown(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        _get_own_batch(request, pk),
        batches.resend_unknown,
        lambda b: (
            ngettext(
                "Re-sending the %(count)s room whose delivery was unknown, in this new "
                "batch. Rooms that already had the message get it again.",
                "Re-sending the %(count)s rooms whose delivery was unknown, in this new "
                "batch. Rooms that already had the message get it again.",
                b.room_count,
            )
            % {"count": f"{b.room_count:,}"}
        ),
    )


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_approve(request: HttpRequest, pk: int) -> HttpResponse:
    # The service refuses the author with a message ("Another community manager
    # must approve this broadcast."), shown on the batch page.
    return _act(
        request,
        _get_batch_for_user(request, pk),
        batches.approve,
        lambda b: (
            _("Broadcast approved: sending now.")
            if b.status == BatchStatus.RUNNING
            else _("Broadcast approved: it goes out at its scheduled time.")
        ),
    )
