"""Moderator pages (blocklists, try a message, decisions) and the auditors' change history."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet, Sum
from django.http import (
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from liveadmin.http import AuthedHtmxRequest
from liveadmin.roles import Role, role_required
from webhooks import exports, moderation, services
from webhooks.forms import (
    BlocklistForm,
    ChangeFilterForm,
    DecisionFilterForm,
    EntryForm,
    ImportForm,
    TryForm,
)
from webhooks.labels import KIND_CHOICES, refusal_label, verdict_word
from webhooks.models import (
    Blocklist,
    BlocklistChange,
    BlocklistEntry,
    Decision,
    DecisionCount,
    RejectionCount,
)
from webhooks.recent import latency_summary
from webhooks.vocabulary import VERDICTS

logger = logging.getLogger(__name__)
ENTRY_SORTS = {
    "hits": ("-hit_count", "term"),
    "term": ("term",),
    "newest": ("-created_at",),
    "kind": ("kind", "term"),
}


def _get_list(pk: int) -> Blocklist:
    return get_object_or_404(Blocklist.objects.select_related("app"), pk=pk)


def _get_entry(pk: int) -> BlocklistEntry:
    return get_object_or_404(
        BlocklistEntry.objects.select_related("blocklist", "added_by"), pk=pk
    )


def _form_errors(form: EntryForm, exc: ValidationError) -> None:
    for name, errors in exc.message_dict.items():
        for message in errors:
            form.add_error(name if name in form.fields else None, message)


# --- lists -------------------------------------------------------------------------


@login_required
@role_required(Role.MODERATOR)
def blocklist_list(request: AuthedHtmxRequest) -> HttpResponse:
    lists = Blocklist.objects.select_related("app").annotate(
        entry_count=Count("entries"),
        active_count=Count("entries", filter=Q(entries__enabled=True)),
    )
    return render(
        request,
        "webhooks/blocklist_list.html",
        {"lists": lists, "form": BlocklistForm()},
    )


@login_required
@require_POST
@role_required(Role.MODERATOR)
def blocklist_create(request: AuthedHtmxRequest) -> HttpResponse:
    form = BlocklistForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        blocklist = services.create_list(
            d["name"], app=d["app"], note=d["note"], actor=request.user
        )
        if not d["enabled"]:
            services.update_list(blocklist, enabled=False, actor=request.user)
        messages.success(
            request, _("List “%(name)s” created.") % {"name": blocklist.name}
        )
        return redirect("webhooks:blocklist-detail", blocklist.pk)
    lists = Blocklist.objects.select_related("app").annotate(
        entry_count=Count("entries"),
        active_count=Count("entries", filter=Q(entries__enabled=True)),
    )
    return render(
        request, "webhooks/blocklist_list.html", {"lists": lists, "form": form}
    )


@login_required
@role_required(Role.MODERATOR)
def blocklist_edit(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    blocklist = _get_list(pk)
    form = BlocklistForm(request.POST or None, instance=Blocklist.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        services.update_list(blocklist, actor=request.user, **form.cleaned_data)
        messages.success(
            request, _("List “%(name)s” saved.") % {"name": blocklist.name}
        )
        return redirect("webhooks:blocklist-detail", blocklist.pk)
    return render(
        request, "webhooks/blocklist_form.html", {"form": form, "blocklist": blocklist}
    )


@login_required
@require_POST
@role_required(Role.MODERATOR)
def blocklist_delete(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    blocklist = _get_list(pk)
    name = blocklist.name
    services.delete_list(blocklist, actor=request.user)
    messages.success(request, _("List “%(name)s” deleted.") % {"name": name})
    if request.htmx:
        return HttpResponseClientRedirect(reverse("webhooks:blocklist-list"))
    return redirect("webhooks:blocklist-list")


def _detail_context(
    request: AuthedHtmxRequest, blocklist: Blocklist, form: EntryForm | None = None
) -> dict:
    sort = request.GET.get("sort", "hits")
    if sort not in ENTRY_SORTS:
        sort = "hits"
    entries = blocklist.entries.select_related("added_by").order_by(*ENTRY_SORTS[sort])
    q = request.GET.get("q", "").strip()
    if q:
        entries = entries.filter(Q(term__icontains=q) | Q(note__icontains=q))
    kind = request.GET.get("kind", "")
    if kind:
        entries = entries.filter(kind=kind)
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    return {
        "blocklist": blocklist,
        "page": page,
        "entries": page.object_list,
        "sort": sort,
        "q": q,
        "kind": kind,
        "query": urlencode({"sort": sort, "q": q, "kind": kind}),
        "kinds": KIND_CHOICES,
        "form": form or EntryForm(),
        "import_form": ImportForm(),
    }


@login_required
@role_required(Role.MODERATOR)
@vary_on_headers("HX-Request")
def blocklist_detail(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    blocklist = _get_list(pk)
    template = "webhooks/blocklist_detail.html"
    if request.htmx:
        template += "#entries"
    return render(request, template, _detail_context(request, blocklist))


# --- entries ----------------------------------------------------------------------


@login_required
@require_POST
@role_required(Role.MODERATOR)
def entry_create(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    blocklist = _get_list(pk)
    form = EntryForm(request.POST)
    if form.is_valid():
        try:
            entry = services.add_entry(
                blocklist, actor=request.user, **form.entry_fields()
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            if not request.htmx:
                messages.success(request, _("Added “%(term)s”.") % {"term": entry.term})
                return redirect("webhooks:blocklist-detail", blocklist.pk)
            context = _detail_context(request, blocklist)
            context["added"] = entry
            return render(request, "webhooks/blocklist_detail.html#entries", context)
    template = "webhooks/blocklist_detail.html"
    if request.htmx:
        template += "#entries"
    return render(request, template, _detail_context(request, blocklist, form))


@login_required
@role_required(Role.MODERATOR)
def entry_edit(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    entry = _get_entry(pk)
    if request.method == "POST":
        form = EntryForm(request.POST, auto_id="edit_%s")
        if form.is_valid():
            try:
                entry = services.update_entry(
                    entry, actor=request.user, **form.entry_fields()
                )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                if request.htmx:
                    return render(
                        request,
                        "webhooks/blocklist_detail.html#entry-row",
                        {"entry": entry},
                    )
                messages.success(request, _("Saved “%(term)s”.") % {"term": entry.term})
                return redirect("webhooks:blocklist-detail", entry.blocklist_id)
    else:
        form = EntryForm(
            auto_id="edit_%s",
            initial={
                "kind": entry.kind,
                "term": entry.term,
                "action": entry.action,
                "code": entry.code,
                "info": entry.info,
                "expires_at": entry.expires_at,
                "note": entry.note,
                "exact": entry.exact,
                "leet": entry.leet,
                "review": entry.review,
            },
        )
    template = "webhooks/entry_form.html"
    if request.htmx:
        template = "webhooks/blocklist_detail.html#entry-edit-row"
    return render(request, template, {"entry": entry, "form": form})


@login_required
@role_required(Role.MODERATOR)
def entry_row(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    """The plain row again (Cancel on an inline edit)."""
    entry = _get_entry(pk)
    if not request.htmx:
        return redirect("webhooks:blocklist-detail", entry.blocklist_id)
    return render(request, "webhooks/blocklist_detail.html#entry-row", {"entry": entry})


@login_required
@require_POST
@role_required(Role.MODERATOR)
def entry_toggle(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    entry = _get_entry(pk)
    entry = services.set_entry_enabled(entry, not entry.enabled, actor=request.user)
    if request.htmx:
        return render(
            request, "webhooks/blocklist_detail.html#entry-row", {"entry": entry}
        )
    return redirect("webhooks:blocklist-detail", entry.blocklist_id)


@login_required
@require_POST
@role_required(Role.MODERATOR)
def entry_delete(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    entry = _get_entry(pk)
    list_pk = entry.blocklist_id
    services.delete_entry(entry, actor=request.user)
    if request.htmx:
        return HttpResponse("")
    messages.success(request, _("Deleted “%(term)s”.") % {"term": entry.term})
    return redirect("webhooks:blocklist-detail", list_pk)


# --- import / export ----------------------------------------------------------------


@login_required
@role_required(Role.MODERATOR)
def blocklist_import(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    blocklist = _get_list(pk)
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    if request.method == "POST" and form.is_valid():
        fmt, content = form.cleaned_data["file"]
        report = services.import_entries(
            blocklist,
            content,
            fmt=fmt,
            actor=request.user,
            default_kind=form.cleaned_data["kind"],
            default_action=form.cleaned_data["action"],
            default_exact=form.cleaned_data["exact"],
            default_leet=form.cleaned_data["leet"],
        )
    return render(
        request,
        "webhooks/import.html",
        {"blocklist": blocklist, "form": form, "report": report},
    )


@login_required
@role_required(Role.MODERATOR)
def blocklist_export(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    blocklist = _get_list(pk)
    content = services.export_csv(services.entries_for_export([blocklist]))
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    filename = slugify(blocklist.name) or f"blocklist-{blocklist.pk}"
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


# --- try a message ----------------------------------------------------------------------


@login_required
@role_required(Role.MODERATOR)
@vary_on_headers("HX-Request")
def try_message(request: AuthedHtmxRequest) -> HttpResponse:
    form = TryForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            result = services.try_message(
                d["app"], text=d["text"], body=d["body"], sender=d["sender"]
            )
        except ValidationError as exc:
            # The webhook's own refusal (its JSON "error"), shown as it answers it.
            form.add_error("body", exc.message_dict.get("body", exc.messages))
    template = "webhooks/try.html"
    if request.htmx:
        template += "#try-result"
    context: dict[str, Any] = {"form": form, "result": result}
    if result is not None:
        context["response_json"] = json.dumps(
            result.response, ensure_ascii=False, indent=2
        )
    return render(request, template, context)


# --- decisions and history ---------------------------------------------------------------


def _filtered_decisions(form: DecisionFilterForm) -> QuerySet[Decision]:
    decisions: QuerySet[Decision] = Decision.objects.select_related("app")
    if form.is_valid():
        decisions = moderation.filter_decisions(decisions, form.cleaned_data)
    return decisions


@login_required
@require_GET
@role_required(Role.MODERATOR, Role.AUDITOR)
@vary_on_headers("HX-Request")
def decision_list(request: AuthedHtmxRequest) -> HttpResponse:
    form = DecisionFilterForm(request.GET or None)
    decisions = _filtered_decisions(form)
    page = Paginator(decisions, 50).get_page(request.GET.get("page"))
    entry_ids = {i for decision in page.object_list for i in decision.entry_ids}
    terms = dict(
        BlocklistEntry.objects.filter(pk__in=entry_ids).values_list("pk", "term")
    )
    for decision in page.object_list:
        decision.matched_terms = [  # type: ignore[attr-defined]
            terms.get(i, _("#%(id)s (deleted)") % {"id": i}) for i in decision.entry_ids
        ]
    template = "webhooks/decision_list.html"
    if request.htmx:
        template += "#decision-table"
    since = timezone.now() - timedelta(hours=24)
    totals = dict(
        DecisionCount.objects.filter(minute__gte=since)
        .values_list("action")
        .annotate(n=Sum("count"))
        .values_list("action", "n")
    )
    refusals = (
        RejectionCount.objects.filter(minute__gte=since)
        .values("reason")
        .annotate(n=Sum("count"))
        .order_by("-n")
    )
    return render(
        request,
        template,
        {
            "form": form,
            "page": page,
            "query": _query_without_page(request),
            "totals": [
                (action, verdict_word(action), totals.get(action, 0))
                for action in VERDICTS
            ],
            "refusals": [{**r, "label": refusal_label(r["reason"])} for r in refusals],
            "latency": [
                (_("Last hour"), latency_summary(None, 3600)),
                (_("Last 24 hours"), latency_summary(None, 24 * 3600)),
            ],
        },
    )


@login_required
@require_GET
@role_required(Role.MODERATOR, Role.AUDITOR)
def decision_export(request: AuthedHtmxRequest) -> HttpResponseBase:
    """The filtered decision log, streamed as CSV or (?format=jsonl) JSON lines."""
    form = DecisionFilterForm(request.GET or None)
    if request.GET and not form.is_valid():
        return HttpResponseBadRequest(
            _("Bad filter: %(errors)s")
            % {
                "errors": "; ".join(
                    f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items()
                )
            },
            content_type="text/plain; charset=utf-8",
        )
    decisions = _filtered_decisions(form)
    jsonl = request.GET.get("format") == "jsonl"
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    logger.info("user %s exports the decision log", request.user.pk)
    if jsonl:
        response = StreamingHttpResponse(
            exports.decision_jsonl(decisions), content_type="application/x-ndjson"
        )
    else:
        response = StreamingHttpResponse(
            exports.decision_csv(decisions), content_type="text/csv; charset=utf-8"
        )
    ext = "jsonl" if jsonl else "csv"
    response["Content-Disposition"] = f'attachment; filename="decisions-{stamp}.{ext}"'
    return response


def _filtered_changes(form: ChangeFilterForm) -> QuerySet[BlocklistChange]:
    changes = BlocklistChange.objects.all()
    if form.is_valid():
        d = form.cleaned_data
        if d["object_type"]:
            changes = changes.filter(object_type=d["object_type"])
        if d["action"]:
            changes = changes.filter(action=d["action"])
        if d["actor"]:
            changes = changes.filter(actor_name__iexact=d["actor"].strip())
    return changes


@login_required
@require_GET
@role_required(Role.AUDITOR)
def change_export(request: AuthedHtmxRequest) -> HttpResponseBase:
    """The filtered blocklist change history as CSV, streamed."""
    changes = _filtered_changes(ChangeFilterForm(request.GET or None))
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(
        exports.change_csv(changes), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="blocklist-history-{stamp}.csv"'
    )
    return response


@login_required
@role_required(Role.AUDITOR)
@vary_on_headers("HX-Request")
def change_list(request: AuthedHtmxRequest) -> HttpResponse:
    form = ChangeFilterForm(request.GET or None)
    changes = _filtered_changes(form)
    page = Paginator(changes, 50).get_page(request.GET.get("page"))
    template = "webhooks/change_list.html"
    if request.htmx:
        template += "#change-table"
    return render(
        request,
        template,
        {"form": form, "page": page, "query": _query_without_page(request)},
    )


def _query_without_page(request: AuthedHtmxRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()
