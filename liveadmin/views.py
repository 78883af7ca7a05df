"""The home page (each role's overview) and the error pages inside the layout."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from liveadmin import metrics as metrics_exposition
from liveadmin import overview
from liveadmin.roles import Role, user_roles
from liveadmin.rollup import rollup

logger = logging.getLogger(__name__)

# New log rows counted when a page is opened (the periodic task does the rest), so
# the page is current in the embedded default and stays fast after a burst.
ON_DEMAND_ROLLUP = 2_000


def refresh_counts() -> None:
    """Count what is new since the last rollup, without failing the page (when no
    periodic task does it: OVERVIEW_ROLLUP_ON_VIEW)."""
    if not settings.OVERVIEW_ROLLUP_ON_VIEW:
        return
    try:
        rollup(limit=ON_DEMAND_ROLLUP, on_demand=True)
    except Exception:
        logger.exception("could not bring the overview counts up to date")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    held = user_roles(request.user)
    rng = overview.get_range(request.GET.get("range"))
    context: dict = {
        "range": rng,
        "ranges": overview.RANGES.values(),
        "now": timezone.now(),
    }
    if held:
        refresh_counts()
    if Role.MANAGER in held:
        context["manager"] = overview.manager_figures(request.user, rng)
    if Role.MODERATOR in held:
        context["moderator"] = overview.moderator_figures(rng)
    if Role.AUDITOR in held:
        context["auditor"] = overview.auditor_figures(rng)
    if Role.ADMIN in held:
        context["administrator"] = overview.admin_figures()
    return render(request, "liveadmin/home.html", context)


ERRORS = {
    400: (_("Bad request"), _("The request could not be understood.")),
    403: (
        _("Not allowed"),
        _(
            "Your role does not include this page or action. Ask an administrator if "
            "you need it."
        ),
    ),
    404: (_("Page not found"), _("There is nothing at this address.")),
    500: (
        _("Something went wrong"),
        _(
            "LiveAdmin could not complete this request. It has been logged; try again "
            "in a moment."
        ),
    ),
}


def _error(request: HttpRequest, status: int) -> HttpResponse:
    title, text = ERRORS[status]
    context = {"error_title": title, "error_text": text}
    return render(request, "error.html", context, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return _error(request, 404)


def server_error(request: HttpRequest) -> HttpResponse:
    # Inside the layout, but without the database: it may be what failed.
    try:
        return _error(request, 500)
    except Exception:
        logger.exception("could not render the error page")
        return HttpResponse(str(ERRORS[500][1]), status=500, content_type="text/plain")


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico whatever the page says."""
    return redirect(static("favicon.svg"), permanent=True)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format; 404 unless METRICS_TOKEN or METRICS_ALLOWED_IPS is set."""
    if not metrics_exposition.enabled():
        raise Http404("metrics are off")
    if not metrics_exposition.allowed(request):
        response = HttpResponse("not allowed\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    refresh_counts()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics_exposition.LiveAdminCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
