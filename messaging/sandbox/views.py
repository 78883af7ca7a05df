"""The sandbox pages: the index (what the sandbox is, its endpoints) and the rooms
page that shows what each sandbox room's audience received. The provider endpoints
are in each sandbox provider's module (messaging/sandbox/registry.py)."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from liveadmin.http import HtmxRequest
from liveadmin.roles import Role, has_role, role_required
from messaging.models import SendRecord
from messaging.sandbox import registry, services
from messaging.sandbox.forms import (
    MirrorForm,
    MuteForm,
    RoomForm,
    app_label,
    dashboard_names,
)
from messaging.sandbox.models import (
    MutedMember,
    SandboxApp,
    SandboxMessage,
    SandboxRoom,
)

logger = logging.getLogger(__name__)

# Who reads the rooms page: managers see the messages of their own sends,
# moderators and administrators read every room. Only administrators change
# rooms, members or apps.
PAGE_ROLES = (Role.MANAGER, Role.MODERATOR, Role.ADMIN)
READ_ALL_ROLES = (Role.MODERATOR, Role.ADMIN)
MESSAGES_SHOWN = 100
ROOMS_SHOWN = 200


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """What the sandbox provider is, and each sandbox provider's base URL and endpoints."""
    providers = registry.endpoints(request.build_absolute_uri("/sandbox"))
    return render(
        request,
        "sandbox/index.html",
        {
            "providers": providers,
            # One placeholder of the translated sentence: "<code>URL</code> (label), …"
            "provider_urls": format_html_join(
                ", ",
                '<code class="mono">{}</code> ({})',
                ((base, label) for label, base, _lines in providers),
            ),
            "may_see_rooms": has_role(request.user, *PAGE_ROLES),
        },
    )


# --- rooms page ----------------------------------------------------------------------


def _own_request_ids(user: Any, app: SandboxApp) -> QuerySet:
    """RequestIds of ``user``'s sends to the dashboard app ``app`` stands in for."""
    return (
        SendRecord.objects.filter(
            user=user, app__provider=app.provider, app__app_id=app.app_id
        )
        .exclude(request_id="")
        .values("request_id")
    )


def _rooms_for(user: Any, app: SandboxApp) -> QuerySet:
    rooms = app.rooms.all()
    if has_role(user, *READ_ALL_ROLES):
        return rooms
    return rooms.filter(
        pk__in=SandboxMessage.objects.filter(
            room__app=app, request_id__in=_own_request_ids(user, app)
        ).values("room_id")
    )


def _messages_for(user: Any, room: SandboxRoom) -> QuerySet:
    messages = room.messages.all()
    if has_role(user, *READ_ALL_ROLES):
        return messages
    return messages.filter(request_id__in=_own_request_ids(user, room.app))


def _get_room(pk: int) -> SandboxRoom:
    return get_object_or_404(SandboxRoom.objects.select_related("app"), pk=pk)


def _get_room_for(user: Any, pk: int) -> SandboxRoom:
    """A room the user may read (404 for a manager's room without their messages)."""
    room = _get_room(pk)
    if not _rooms_for(user, room.app).filter(pk=room.pk).exists():
        raise Http404("no such room")
    return room


def _rooms_context(
    user: Any,
    room: SandboxRoom | None,
    *,
    query: str = "",
    room_form: RoomForm | None = None,
    mute_form: MuteForm | None = None,
    mirror_form: MirrorForm | None = None,
) -> dict[str, Any]:
    names = dashboard_names()
    apps = []
    for app in SandboxApp.objects.all():
        # Batch tests can create thousands of rooms: list a page of them, filterable.
        visible = _rooms_for(user, app)
        matching = visible.filter(room_id__icontains=query) if query else visible
        shown = list(matching[:ROOMS_SHOWN])
        hidden = matching.count() - len(shown) if len(shown) == ROOMS_SHOWN else 0
        apps.append((app, app_label(app, names), shown, hidden))
    context: dict[str, Any] = {
        "apps": apps,
        "query": query,
        "room": room,
        "room_form": room_form or RoomForm(initial={"live": True}),
        "mute_form": mute_form or MuteForm(),
        "mirror_form": mirror_form or MirrorForm(),
    }
    if room is not None:
        context["room_label"] = app_label(room.app, names)
        context["room_messages"] = _messages_for(user, room)[:MESSAGES_SHOWN]
        context["muted"] = MutedMember.objects.active().filter(room=room)
    return context


@login_required
@role_required(*PAGE_ROLES)
@vary_on_headers("HX-Request")
def rooms(request: HtmxRequest) -> HttpResponse:
    room = None
    raw = request.GET.get("room", "")
    if raw.isdigit():
        room = _get_room_for(request.user, int(raw))
    if request.htmx and room is not None:
        # The poll of the open room: only its messages are rendered.
        context = {
            "room": room,
            "room_messages": _messages_for(request.user, room)[:MESSAGES_SHOWN],
        }
        return render(request, "sandbox/rooms.html#room-messages", context)
    query = request.GET.get("q", "").strip()[:100]
    return render(
        request, "sandbox/rooms.html", _rooms_context(request.user, room, query=query)
    )


@login_required
@require_POST
@role_required(Role.ADMIN)
def room_create(request: HttpRequest) -> HttpResponse:
    form = RoomForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "sandbox/rooms.html",
            _rooms_context(request.user, None, room_form=form),
        )
    room = services.create_room(
        form.cleaned_data["app"],
        form.cleaned_data["room_id"],
        live=form.cleaned_data["live"],
    )
    messages.success(request, _("Room “%(room)s” created.") % {"room": room.room_id})
    return redirect(f"{reverse('sandbox:rooms')}?room={room.pk}")


@login_required
@require_POST
@role_required(Role.ADMIN)
def room_mute(request: HttpRequest, pk: int) -> HttpResponse:
    room = _get_room(pk)
    form = MuteForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "sandbox/rooms.html",
            _rooms_context(request.user, room, mute_form=form),
        )
    account, seconds = form.cleaned_data["account"], form.cleaned_data["seconds"]
    services.mute_member(room.app, room.room_id, account, seconds)
    if seconds:
        messages.success(
            request,
            _("%(account)s is muted in “%(room)s” for %(seconds)s s.")
            % {"account": account, "room": room.room_id, "seconds": seconds},
        )
    else:
        messages.success(
            request,
            _("%(account)s is no longer muted in “%(room)s”.")
            % {"account": account, "room": room.room_id},
        )
    return redirect(f"{reverse('sandbox:rooms')}?room={room.pk}")


@login_required
@require_POST
@role_required(Role.ADMIN)
def room_unmute(request: HttpRequest, pk: int, member: int) -> HttpResponse:
    room = _get_room(pk)
    muted = get_object_or_404(MutedMember, pk=member, room=room)
    services.unmute_member(room.app, room.room_id, muted.account)
    messages.success(
        request,
        _("%(account)s is no longer muted in “%(room)s”.")
        % {"account": muted.account, "room": room.room_id},
    )
    return redirect(f"{reverse('sandbox:rooms')}?room={room.pk}")


@login_required
@require_POST
@role_required(Role.ADMIN)
def app_mirror(request: HttpRequest) -> HttpResponse:
    """Administrators copy a dashboard app's credentials into the sandbox."""
    form = MirrorForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "sandbox/rooms.html",
            _rooms_context(request.user, None, mirror_form=form),
        )
    app = form.cleaned_data["app"]
    services.mirror_provider_app(app, rooms=form.cleaned_data["rooms"])
    messages.success(request, _("App “%(app)s” is in the sandbox.") % {"app": app.name})
    return redirect("sandbox:rooms")
