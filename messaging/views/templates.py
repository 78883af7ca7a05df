"""Message templates: list, create, edit, delete (community managers)."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers

from liveadmin.http import AuthedHtmxRequest, wants_fragment
from liveadmin.roles import Role, role_required
from messaging.forms.templates import MessageTemplateForm
from messaging.models import MessageTemplate, SendKind

logger = logging.getLogger(__name__)


# --- message templates ----------------------------------------------------------------


def _get_template(pk: int) -> MessageTemplate:
    return get_object_or_404(MessageTemplate, pk=pk)


@login_required
@role_required(Role.MANAGER)
@vary_on_headers("HX-Request")
def template_list(request: AuthedHtmxRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    templates = MessageTemplate.objects.select_related("app").search(query)
    template = "messaging/template_list.html"
    if wants_fragment(request):
        template += "#template-table"
    return render(request, template, {"templates": templates, "q": query})


def _template_form_page(
    request: AuthedHtmxRequest, form: MessageTemplateForm, obj: MessageTemplate | None
) -> HttpResponse:
    template = "messaging/template_form.html"
    if wants_fragment(request) and request.method == "GET":
        template += "#template-fields"
    return render(request, template, {"form": form, "object": obj})


@login_required
@role_required(Role.MANAGER)
@vary_on_headers("HX-Request")
def template_create(request: AuthedHtmxRequest) -> HttpResponse:
    if request.method == "POST":
        form = MessageTemplateForm(request.POST)
        if form.is_valid():
            obj = form.save(commit=False)
            obj.created_by = request.user
            obj.save()
            messages.success(
                request, _("Template “%(name)s” saved.") % {"name": obj.name}
            )
            return redirect("messaging:template-list")
    else:
        # The kind select swaps in its fields with a GET carrying what was typed.
        form = MessageTemplateForm(
            initial={"kind": SendKind.TEXT, **request.GET.dict()}
        )
    return _template_form_page(request, form, None)


@login_required
@role_required(Role.MANAGER)
@vary_on_headers("HX-Request")
def template_edit(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    obj = _get_template(pk)
    if request.method == "POST":
        form = MessageTemplateForm(request.POST, instance=obj)
        if form.is_valid():
            form.save()
            messages.success(
                request, _("Template “%(name)s” saved.") % {"name": obj.name}
            )
            return redirect("messaging:template-list")
    else:
        form = MessageTemplateForm(instance=obj, initial=request.GET.dict())
    return _template_form_page(request, form, obj)


@login_required
@require_http_methods(["GET", "POST"])
@role_required(Role.MANAGER)
def template_delete(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    obj = _get_template(pk)
    if request.method == "POST":
        obj.delete()
        messages.success(
            request, _("Template “%(name)s” deleted.") % {"name": obj.name}
        )
        return redirect("messaging:template-list")
    return render(request, "messaging/template_delete.html", {"object": obj})
