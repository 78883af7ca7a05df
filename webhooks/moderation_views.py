"""Moderator pages beyond blocklists: the review queue, a sender's page, mutes,
escalation rules, a decision's page and dry runs of draft entries."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from liveadmin.http import AuthedHtmxRequest
from liveadmin.roles import Role, role_required
from messaging.models import ProviderApp
from webhooks import dryrun, moderation, services
from webhooks.forms import EntryForm, ImportForm
from webhooks.models import (
    Blocklist,
    BlocklistEntry,
    Decision,
    EscalationRule,
    Sanction,
)
from webhooks.moderation_forms import AddTermForm, EscalationForm, MuteForm
from webhooks.templatetags.moderation_tags import webhook_verdict


def _get_decision(pk: int) -> Decision:
    return get_object_or_404(
        Decision.objects.select_related("app", "send_record", "sanction"), pk=pk
    )


def _get_app(pk: int) -> ProviderApp:
    return get_object_or_404(ProviderApp, pk=pk)


def _add_errors(
    form: MuteForm | EscalationForm | AddTermForm, exc: ValidationError
) -> None:
    for name, errors in exc.message_dict.items():
        for message in errors:
            form.add_error(name if name in form.fields else None, message)


def _terms(decisions: list[Decision]) -> None:
    """Attach matched entry terms to each decision (one query for the page)."""
    ids = {i for d in decisions for i in d.entry_ids}
    terms = dict(BlocklistEntry.objects.filter(pk__in=ids).values_list("pk", "term"))
    for d in decisions:
        matched = [
            terms.get(i, _("#%(id)s (deleted)") % {"id": i}) for i in d.entry_ids
        ]
        d.matched_terms = matched  # type: ignore[attr-defined]


# --- the review queue ----------------------------------------------------------------


@login_required
@role_required(Role.MODERATOR)
@vary_on_headers("HX-Request")
def review_queue(request: AuthedHtmxRequest) -> HttpResponse:
    page = Paginator(moderation.review_queue(), 50).get_page(request.GET.get("page"))
    _terms(list(page.object_list))
    for d in page.object_list:
        _review_forms(d)
    return render(request, "webhooks/review_queue.html", {"page": page, "query": ""})


def _review_forms(
    d: Decision,
    mute_form: MuteForm | None = None,
    term_form: AddTermForm | None = None,
) -> None:
    """The item's own forms (prefixed by its id, so a page of items has unique ids)."""
    mute = mute_form or MuteForm(prefix=f"m{d.pk}", fixed_room=d.room_id)
    term = term_form or AddTermForm(prefix=f"t{d.pk}", initial={"term": d.text[:100]})
    d.mute_form = mute  # type: ignore[attr-defined]
    d.term_form = term  # type: ignore[attr-defined]


def _review_done(
    request: AuthedHtmxRequest, decision: Decision, note: str
) -> HttpResponse:
    if request.htmx:
        decision.refresh_from_db()
        return render(
            request,
            "webhooks/review_queue.html#review-done",
            {"d": decision, "note": note},
        )
    messages.success(request, note)
    return redirect("webhooks:review-queue")


@login_required
@require_POST
@role_required(Role.MODERATOR)
def review_dismiss(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    decision = _get_decision(pk)
    done = moderation.dismiss(decision, actor=request.user)
    note = _("Dismissed.") if done else _("Already handled by someone else.")
    return _review_done(request, decision, note)


@login_required
@require_POST
@role_required(Role.MODERATOR)
def review_add_term(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    decision = _get_decision(pk)
    form = AddTermForm(request.POST, prefix=f"t{pk}")
    if form.is_valid():
        d = form.cleaned_data
        try:
            entry = moderation.add_term_from_decision(
                decision,
                d["blocklist"],
                term=d["term"],
                kind=d["kind"],
                action=d["action"],
                actor=request.user,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            note = _("Added “%(term)s” to %(list)s.") % {
                "term": entry.term,
                "list": entry.blocklist.name,
            }
            return _review_done(request, decision, note)
    _terms([decision])
    _review_forms(decision, term_form=form)
    return render(request, "webhooks/review_queue.html#review-item", {"d": decision})


# --- mutes ----------------------------------------------------------------------------


@login_required
@require_POST
@role_required(Role.MODERATOR)
def decision_mute(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    """Mute a decision's sender (from the queue, the log or the decision's page)."""
    decision = _get_decision(pk)
    form = MuteForm(request.POST, prefix=f"m{pk}", fixed_room=decision.room_id)
    if form.is_valid():
        d = form.cleaned_data
        try:
            sanction = moderation.mute_from_decision(
                decision,
                minutes=d["minutes"],
                whole_app=d["scope"] == "app",
                reason=d["reason"],
                actor=request.user,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            note = _muted_note(sanction)
            if request.POST.get("next") == "queue":
                return _review_done(request, decision, note)
            messages.success(request, note)
            return redirect("webhooks:decision-detail", decision.pk)
    _terms([decision])
    if request.POST.get("next") == "queue":
        _review_forms(decision, mute_form=form)
        return render(
            request, "webhooks/review_queue.html#review-item", {"d": decision}
        )
    return render(
        request,
        "webhooks/decision_detail.html",
        {"d": decision, "mute_form": form},
    )


def _muted_note(sanction: Sanction) -> str:
    if sanction.expires_at is None:
        return _("Muted %(sender)s permanently.") % {"sender": sanction.sender}
    return _("Muted %(sender)s until %(until)s UTC.") % {
        "sender": sanction.sender,
        "until": f"{sanction.expires_at:%Y-%m-%d %H:%M}",
    }


@login_required
@role_required(Role.MODERATOR, Role.AUDITOR)
def decision_detail(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    decision = _get_decision(pk)
    moderation.send_for_decision(decision)
    _terms([decision])
    return render(
        request,
        "webhooks/decision_detail.html",
        {
            "d": decision,
            "mute_form": MuteForm(prefix=f"m{pk}", fixed_room=decision.room_id),
        },
    )


@login_required
@role_required(Role.MODERATOR)
@vary_on_headers("HX-Request")
def sender_detail(request: AuthedHtmxRequest, app_pk: int, sender: str) -> HttpResponse:
    """Every decision about one sender in one app, their sanctions, and a mute form."""
    app = _get_app(app_pk)
    form = MuteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            sanction = moderation.mute_sender(
                app,
                sender,
                minutes=d["minutes"],
                room_id=d["room_id"],
                reason=d["reason"],
                actor=request.user,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _muted_note(sanction))
            return redirect("webhooks:sender-detail", app.pk, sender)
    decisions = Decision.objects.filter(app=app, sender=sender).select_related("app")
    page = Paginator(decisions, 50).get_page(request.GET.get("page"))
    _terms(list(page.object_list))
    sanctions = Sanction.objects.filter(app=app, sender=sender).select_related("app")
    return render(
        request,
        "webhooks/sender_detail.html",
        {
            "app": app,
            "sender": sender,
            "page": page,
            "query": "",
            "sanctions": sanctions[:50],
            "form": form,
        },
    )


@login_required
@require_POST
@role_required(Role.MODERATOR)
def sanction_lift(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    sanction = get_object_or_404(Sanction.objects.select_related("app"), pk=pk)
    moderation.lift_sanction(sanction, actor=request.user)
    if sanction.kind == "flag":
        note = _("Lifted the flag of %(sender)s.")
    else:
        note = _("Lifted the mute of %(sender)s.")
    messages.success(request, note % {"sender": sanction.sender})
    return redirect("webhooks:sender-detail", sanction.app_id, sanction.sender)


@login_required
@role_required(Role.MODERATOR)
def sanction_list(request: AuthedHtmxRequest) -> HttpResponse:
    active = moderation.active_sanctions().order_by("-created_at")
    page = Paginator(active, 50).get_page(request.GET.get("page"))
    return render(request, "webhooks/sanction_list.html", {"page": page, "query": ""})


# --- escalation ------------------------------------------------------------------------


@login_required
@role_required(Role.MODERATOR)
def escalation_list(request: AuthedHtmxRequest) -> HttpResponse:
    form = EscalationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            moderation.set_escalation(
                d["app"],
                hits=d["hits"],
                within_seconds=d["within_seconds"],
                minutes=d["minutes"],
                sanction=d["sanction"],
                room_only=d["room_only"],
                actor=request.user,
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request,
                _("Escalation rule for %(app)s saved.") % {"app": d["app"].name},
            )
            return redirect("webhooks:escalation-list")
    rules = EscalationRule.objects.select_related("app")
    return render(
        request, "webhooks/escalation_list.html", {"rules": rules, "form": form}
    )


@login_required
@require_POST
@role_required(Role.MODERATOR)
def escalation_delete(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(EscalationRule.objects.select_related("app"), pk=pk)
    moderation.delete_escalation(rule, actor=request.user)
    messages.success(
        request, _("Escalation rule for %(app)s deleted.") % {"app": rule.app.name}
    )
    return redirect("webhooks:escalation-list")


# --- dry runs ---------------------------------------------------------------------------


def _dryrun_apps(list_pk: int) -> list[ProviderApp]:
    """The app of the list, or every Tencent app for a list shared by all apps."""
    blocklist = get_object_or_404(Blocklist.objects.select_related("app"), pk=list_pk)
    if blocklist.app is not None:
        return [blocklist.app]
    return list(ProviderApp.objects.filter(provider="tencent"))


def _dryrun_page(
    request: AuthedHtmxRequest,
    form: EntryForm | ImportForm,
    apps: list[ProviderApp],
    drafts: list[dict] | None,
) -> HttpResponse:
    results = []
    if drafts is not None:
        results = [(app, dryrun.dry_run(app, drafts)) for app in apps]
    return render(
        request, "webhooks/dryrun_result.html", {"form": form, "results": results}
    )


@login_required
@require_POST
@role_required(Role.MODERATOR)
def entry_dryrun(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    """The entry form's "test against recent traffic": nothing is saved."""
    apps = _dryrun_apps(pk)
    form = EntryForm(request.POST)
    drafts = None
    if form.is_valid():
        d = form.cleaned_data
        drafts = [{k: d[k] for k in ("kind", "term", "action", "code", "info")}]
    return _dryrun_page(request, form, apps, drafts)


@login_required
@require_POST
@role_required(Role.MODERATOR)
def import_dryrun(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    """An import file tested against recent traffic before importing it."""
    apps = _dryrun_apps(pk)
    form = ImportForm(request.POST, request.FILES)
    drafts = None
    if form.is_valid():
        fmt, content = form.cleaned_data["file"]
        drafts = services.parse_import(
            content,
            fmt=fmt,
            default_kind=form.cleaned_data["kind"],
            default_action=form.cleaned_data["action"],
        )
    return _dryrun_page(request, form, apps, drafts)


# --- LiveAdmin's own sends --------------------------------------------------------------


@login_required
@role_required(Role.MANAGER, Role.AUDITOR)
def send_decision(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    """The send result's note on what the webhook did to it (loaded after the send,
    once the decision log is written)."""
    from messaging.models import SendRecord

    record = get_object_or_404(
        SendRecord.objects.visible_to(request.user).select_related("app"), pk=pk
    )
    return render(request, "webhooks/send_decision.html", webhook_verdict(record))
