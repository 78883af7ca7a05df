"""The send log: list, detail and CSV export (auditors; managers see their own)."""

from __future__ import annotations

import logging
import zoneinfo
from datetime import tzinfo

from django.contrib.auth.decorators import login_required
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseBase,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from liveadmin.http import AuthedHtmxRequest
from liveadmin.roles import Role, has_role, role_required
from messaging.forms.audit import AuditFilterForm
from messaging.models import SendRecord
from messaging.services.audit import (
    csv_lines,
    explain_drop_reason,
    explain_error,
    filter_send_log,
    msg_time_as_datetime,
    page_send_log,
    pretty_json,
    with_names,
)
from messaging.services.audit_chain import latest_verification

logger = logging.getLogger(__name__)


# --- audit log ------------------------------------------------------------------


def _request_timezone(request: HttpRequest) -> tzinfo:
    """The user's time zone: the browser's, sent by the filter form as ``tz``.

    Unknown or missing names fall back to the site's TIME_ZONE.
    """
    name = request.GET.get("tz", "").strip()
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            logger.info("ignoring unknown time zone %s", name[:64])
    return timezone.get_default_timezone()


def _filter_query(form: AuditFilterForm) -> str:
    """The form's filters as a query string, without the paging cursors."""
    query = QueryDict(mutable=True)
    for name in form.fields:
        value = form.data.get(name, "")
        if name not in ("after", "before") and value:
            query[name] = value
    return query.urlencode()


def _get_send_for_user(request: AuthedHtmxRequest, pk: int) -> SendRecord:
    # Another user's send is a 404 for a manager: it does not exist for them.
    return get_object_or_404(
        with_names(SendRecord.objects.visible_to(request.user)),
        pk=pk,
    )


@login_required
@require_GET
@role_required(Role.AUDITOR, Role.MANAGER)
@vary_on_headers("HX-Request")
def audit_list(request: AuthedHtmxRequest) -> HttpResponse:
    is_auditor = has_role(request.user, Role.AUDITOR)
    tz = _request_timezone(request)
    with timezone.override(tz):
        form = AuditFilterForm(request.GET, show_user=is_auditor)
        page = None
        if form.is_valid():
            records = filter_send_log(
                SendRecord.objects.visible_to(request.user), form.log_filter()
            )
            page = page_send_log(
                records,
                after=form.cleaned_data["after"],
                before=form.cleaned_data["before"],
            )
        context = {
            "form": form,
            "page": page,
            "query": _filter_query(form),
            "is_auditor": is_auditor,
            "verification": latest_verification() if is_auditor else None,
            "tz_name": str(tz),
        }
        template = "messaging/audit_list.html"
        # The filter form swaps form and table (its errors sit next to its
        # fields); the pager swaps the table; a history restore needs the page.
        if request.htmx and not request.htmx.history_restore_request:
            template += (
                "#audit-main" if request.htmx.target == "audit-main" else "#audit-table"
            )
        return render(request, template, context)


@login_required
@require_GET
@role_required(Role.AUDITOR, Role.MANAGER)
def audit_detail(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    record = _get_send_for_user(request, pk)
    with timezone.override(_request_timezone(request)):
        return render(
            request,
            "messaging/audit_detail.html",
            {
                "record": record,
                "explanation": explain_error(record),
                "drop_explanation": explain_drop_reason(record),
                "msg_time": msg_time_as_datetime(record.msg_time),
                "request_json": pretty_json(record.request_body),
                "response_json": pretty_json(record.response_body),
            },
        )


@login_required
@require_GET
@role_required(Role.AUDITOR, Role.MANAGER)
def audit_export(request: AuthedHtmxRequest) -> HttpResponseBase:
    """The filtered log as CSV, streamed: constant memory whatever its size."""
    with timezone.override(_request_timezone(request)):
        form = AuditFilterForm(
            request.GET, show_user=has_role(request.user, Role.AUDITOR)
        )
        if not form.is_valid():
            problems = "; ".join(
                f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items()
            )
            return HttpResponseBadRequest(
                _("Bad filter: %(problems)s") % {"problems": problems},
                content_type="text/plain; charset=utf-8",
            )
        records = filter_send_log(
            SendRecord.objects.visible_to(request.user), form.log_filter()
        )
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    logger.info("user %s exports the send log: %s", request.user.pk, request.GET)
    response = StreamingHttpResponse(
        csv_lines(records), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="send-log-{stamp}.csv"'
    return response
