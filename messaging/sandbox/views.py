"""The sandbox provider's endpoints (Tencent REST API, ZEGO server API) and the
rooms page that shows what each sandbox room's audience received."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from liveadmin.http import HtmxRequest
from liveadmin.roles import Role, role_required
from messaging.sandbox import services, tencent, zego
from messaging.sandbox.forms import (
    MirrorForm,
    MuteForm,
    RoomForm,
    app_label,
    dashboard_names,
)
from messaging.sandbox.models import MutedMember, SandboxApp, SandboxRoom

logger = logging.getLogger(__name__)

PAGE_ROLES = (Role.MANAGER, Role.MODERATOR, Role.ADMIN)
MESSAGES_SHOWN = 100
ROOMS_SHOWN = 200


def _site_url(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


# --- provider endpoints --------------------------------------------------------------


@csrf_exempt
def tencent_api(request: HttpRequest, service: str, command: str) -> JsonResponse:
    """POST /sandbox/v4/<service>/<command>. Always HTTP 200; the result is in the body."""
    live = service == tencent.LIVE
    request_id = tencent.new_request_id()
    try:
        if service not in tencent.COMMANDS or (
            live and command not in tencent.COMMANDS[service]
        ):
            raise tencent.ApiError(60009, f"unknown API v4/{service}/{command}")
        if request.method != "POST":
            raise tencent.ApiError(60002, "the REST API accepts POST only")
        call = tencent.authenticate(
            request.GET,
            site_url=_site_url(request),
            client_ip=request.META.get("REMOTE_ADDR", ""),
            request_id=request_id,
        )
        if command not in tencent.COMMANDS[service]:
            raise tencent.ApiError(
                tencent.GROUP_BAD_COMMAND, f"invalid command {command}"
            )
        body = tencent.parse_body(request.body)
        if command == "create_room":
            result = {"Response": tencent.create_live_room(call, body)}
        elif command == "destroy_room":
            tencent.destroy_live_room(call, body)
            result = {}
        elif live:
            result = {"Response": tencent.send_room_message(call, command, body)}
        else:
            result = tencent.send_broadcast(call, body)
        code, info = 0, ""
    except tencent.ApiError as exc:
        code, info, result = exc.code, exc.info, {}
    except Exception:
        logger.exception("sandbox: v4/%s/%s failed", service, command)
        code = tencent.LIVE_INTERNAL if live else tencent.GROUP_INTERNAL
        info, result = "server internal error, please try again", {}
    answer: dict[str, Any] = {
        "ActionStatus": "OK" if code == 0 else "FAIL",
        "ErrorCode": code,
        "ErrorInfo": info,
    }
    if live:
        # TUILiveKit answers carry a RequestId on every request, results under Response.
        answer["RequestId"] = request_id
    answer.update(result)
    return JsonResponse(answer)


@csrf_exempt
def zego_api(request: HttpRequest) -> JsonResponse:
    """GET /sandbox/zego/?Action=SendCustomCommand&... answered {Code, Message, RequestId, Data}."""
    request_id = zego.new_request_id()
    status, data = 200, None
    try:
        if request.method != "GET":
            status = 405
            raise zego.ZegoError(1, "SendCustomCommand is a GET request")
        app = zego.authenticate(request.GET)
        data = zego.send_custom_command(app, request.GET, request_id)
        code, message = 0, "success"
    except zego.ZegoError as exc:
        code, message = exc.code, exc.message
    except Exception:
        logger.exception("sandbox: ZEGO %s failed", request.GET.get("Action", ""))
        code, message = 100000015, "gateway internal error"
    answer = {"Code": code, "Message": message, "RequestId": request_id}
    if data is not None:
        answer["Data"] = data
    return JsonResponse(answer, status=status)


# --- rooms page ----------------------------------------------------------------------


def _get_room(pk: int) -> SandboxRoom:
    return get_object_or_404(SandboxRoom.objects.select_related("app"), pk=pk)


def _rooms_context(
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
        matching = (
            app.rooms.filter(room_id__icontains=query) if query else app.rooms.all()
        )
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
        context["room_messages"] = room.messages.all()[:MESSAGES_SHOWN]
        context["muted"] = MutedMember.objects.active().filter(room=room)
    return context


@login_required
@role_required(*PAGE_ROLES)
@vary_on_headers("HX-Request")
def rooms(request: HtmxRequest) -> HttpResponse:
    room = None
    raw = request.GET.get("room", "")
    if raw.isdigit():
        room = _get_room(int(raw))
    if request.htmx and room is not None:
        # The poll of the open room: only its messages are rendered.
        context = {"room": room, "room_messages": room.messages.all()[:MESSAGES_SHOWN]}
        return render(request, "sandbox/rooms.html#room-messages", context)
    query = request.GET.get("q", "").strip()[:100]
    return render(request, "sandbox/rooms.html", _rooms_context(room, query=query))


@login_required
@require_POST
@role_required(*PAGE_ROLES)
def room_create(request: HttpRequest) -> HttpResponse:
    form = RoomForm(request.POST)
    if not form.is_valid():
        return render(
            request, "sandbox/rooms.html", _rooms_context(None, room_form=form)
        )
    room = services.create_room(
        form.cleaned_data["app"],
        form.cleaned_data["room_id"],
        live=form.cleaned_data["live"],
    )
    messages.success(request, f"Room “{room.room_id}” created.")
    return redirect(f"{reverse('sandbox:rooms')}?room={room.pk}")


@login_required
@require_POST
@role_required(*PAGE_ROLES)
def room_mute(request: HttpRequest, pk: int) -> HttpResponse:
    room = _get_room(pk)
    form = MuteForm(request.POST)
    if not form.is_valid():
        return render(
            request, "sandbox/rooms.html", _rooms_context(room, mute_form=form)
        )
    account, seconds = form.cleaned_data["account"], form.cleaned_data["seconds"]
    services.mute_member(room.app, room.room_id, account, seconds)
    if seconds:
        messages.success(
            request, f"{account} is muted in “{room.room_id}” for {seconds} s."
        )
    else:
        messages.success(request, f"{account} is no longer muted in “{room.room_id}”.")
    return redirect(f"{reverse('sandbox:rooms')}?room={room.pk}")


@login_required
@require_POST
@role_required(*PAGE_ROLES)
def room_unmute(request: HttpRequest, pk: int, member: int) -> HttpResponse:
    room = _get_room(pk)
    muted = get_object_or_404(MutedMember, pk=member, room=room)
    services.unmute_member(room.app, room.room_id, muted.account)
    messages.success(
        request, f"{muted.account} is no longer muted in “{room.room_id}”."
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
            request, "sandbox/rooms.html", _rooms_context(None, mirror_form=form)
        )
    app = form.cleaned_data["app"]
    services.mirror_provider_app(app, rooms=form.cleaned_data["rooms"])
    messages.success(request, f"App “{app.name}” is in the sandbox.")
    return redirect("sandbox:rooms")
