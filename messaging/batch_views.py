"""Batch pages (community managers): the list, and a batch's live progress and controls.

Kept apart from messaging/views.py so the send, audit and batch areas stay in
separate files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseStopPolling

from liveadmin.http import AuthedHtmxRequest
from liveadmin.roles import Role, role_required
from messaging.models import Batch, BatchStatus, Outcome, SendRecord
from messaging.services import batches
from messaging.services.sending import SendValidationError


def _get_batch_for_user(request: HttpRequest, pk: int) -> Batch:
    return get_object_or_404(
        Batch.objects.visible_to(request.user).select_related(
            "app", "created_by", "approved_by", "cancelled_by", "resend_of"
        ),
        pk=pk,
    )


@login_required
@role_required(Role.MANAGER)
def batch_list(request: HttpRequest) -> HttpResponse:
    qs = Batch.objects.visible_to(request.user).select_related("app", "created_by")
    status = request.GET.get("status", "")
    if status in BatchStatus.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    # One grouped count for the page's batches (the (batch, outcome) index).
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
        batch.counts = counts[batch.pk]
    return render(
        request,
        "messaging/batch_list.html",
        {
            "page": page,
            "batches": rows,
            "status": status,
            "statuses": BatchStatus.choices,
        },
    )


@login_required
@role_required(Role.MANAGER)
@vary_on_headers("HX-Request")
def batch_detail(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    context = {
        "batch": batch,
        "progress": batch.progress(),
        "estimate": batches.describe_estimate(batch.app, batch.kind, batch.room_count),
        "can_approve": (
            batch.status == BatchStatus.AWAITING_APPROVAL
            and batch.created_by_id != request.user.pk
        ),
        "failed": SendRecord.objects.filter(batch=batch, outcome=Outcome.FAILED)
        .order_by("id")
        .only("id", "room_id", "error_code", "error_info", "attempts")[:20],
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
    request: HttpRequest, pk: int, action: Callable[..., Any], done: str
) -> HttpResponse:
    batch = _get_batch_for_user(request, pk)
    try:
        result = action(batch, actor=request.user)
    except batches.BatchError as exc:
        messages.error(request, str(exc))
        return redirect("messaging:batch-detail", pk=batch.pk)
    except SendValidationError as exc:
        messages.error(request, f"Could not re-send: {exc}")
        return redirect("messaging:batch-detail", pk=batch.pk)
    messages.success(request, done)
    target = result if isinstance(result, Batch) else batch
    return redirect("messaging:batch-detail", pk=target.pk)


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        batches.cancel,
        "Batch cancelled; rooms not yet sent will not be sent.",
    )


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, batches.pause, "Batch paused.")


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, batches.resume, "Batch resumed.")


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_resend(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request,
        pk,
        batches.resend_failed,
        "Re-sending the failed rooms in a new batch.",
    )


@login_required
@require_POST
@role_required(Role.MANAGER)
def batch_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(request, pk, batches.approve, "Broadcast approved.")
