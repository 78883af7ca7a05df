"""Provider apps: list, create, edit, enable/disable, check credentials (administrators)."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    HttpRequest,
    HttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from liveadmin.roles import Role, role_required
from messaging.forms.apps import ProviderAppForm
from messaging.models import ProviderApp
from messaging.services.credentials import ACCEPTED, REFUSED, check_credentials

logger = logging.getLogger(__name__)


def _get_app_for_admin(pk: int) -> ProviderApp:
    return get_object_or_404(ProviderApp, pk=pk)


@login_required
@role_required(Role.ADMIN)
def app_list(request: HttpRequest) -> HttpResponse:
    apps = ProviderApp.objects.all()
    return render(request, "messaging/app_list.html", {"apps": apps})


@login_required
@role_required(Role.ADMIN)
def app_create(request: HttpRequest) -> HttpResponse:
    form = ProviderAppForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        app = form.save()
        messages.success(request, _("App “%(name)s” created.") % {"name": app.name})
        return redirect("messaging:app-list")
    return render(request, "messaging/app_form.html", {"form": form, "app": None})


@login_required
@role_required(Role.ADMIN)
def app_edit(request: HttpRequest, pk: int) -> HttpResponse:
    app = _get_app_for_admin(pk)
    form = ProviderAppForm(request.POST or None, instance=app)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, _("App “%(name)s” saved.") % {"name": app.name})
        return redirect("messaging:app-list")
    return render(request, "messaging/app_form.html", {"form": form, "app": app})


@login_required
@require_POST
@role_required(Role.ADMIN)
def app_toggle(request: HttpRequest, pk: int) -> HttpResponse:
    app = _get_app_for_admin(pk)
    app.enabled = not app.enabled
    app.save(update_fields=["enabled", "updated_at"])
    if app.enabled:
        text = _("App “%(name)s” enabled.") % {"name": app.name}
    else:
        text = _("App “%(name)s” disabled.") % {"name": app.name}
    messages.success(request, text)
    return redirect("messaging:app-list")


@login_required
@require_POST
@role_required(Role.ADMIN)
def app_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Check credentials: one harmless call, its answer shown with the code and a hint."""
    app = _get_app_for_admin(pk)
    result = check_credentials(app, actor=request.user)
    said = result.explanation or result.error_info or _("no answer")
    if result.error_code is not None:
        said = _("%(said)s (code %(code)s)") % {"said": said, "code": result.error_code}
    values = {"name": app.name, "said": said, "hint": result.hint}
    if result.verdict == ACCEPTED:
        text = _(
            "Credentials of “%(name)s” accepted: the provider said %(said)s. %(hint)s"
        )
    elif result.verdict == REFUSED:
        text = _(
            "Credentials of “%(name)s” refused: the provider said %(said)s. %(hint)s"
        )
    else:
        text = _(
            "Credentials of “%(name)s” inconclusive: the provider said %(said)s. %(hint)s"
        )
    text %= values
    level = messages.SUCCESS if result.ok else messages.ERROR
    messages.add_message(request, level, text)
    return redirect("messaging:app-list")
