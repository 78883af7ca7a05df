"""The send page's form.

The field names are the ones ``messaging.services.sending.build_request`` takes, so
its ``SendValidationError`` keys map straight onto form fields (except ``room_id``
of text and custom messages, which the ``rooms`` list feeds). The fields, their help
and their byte limits come from the kinds' specs (messaging/kinds.py), so the page can
say them and count bytes as the user types; ``build_request`` stays the final check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _

from messaging import providers
from messaging.kinds import (
    KINDS,
    MAX_RANDOM,
    TENCENT_MESSAGE_BYTES,
    ZEGO_MAX_RECIPIENTS,
    FieldSpec,
)
from messaging.models import (
    TEMPLATE_FIELDS,
    MessageTemplate,
    ProviderApp,
    SendKind,
)
from messaging.rooms import MAX_ROOMS, RoomList, decode_room_file, parse_room_ids
from messaging.services.sending import SendValidationError, build_request
from messaging.variables import fill, variables_in

VAR_PREFIX = "var_"

_SPLIT_USERS = re.compile(r"[\s,]+")


def _textarea(
    max_bytes: int, *, rows: int = 3, json_required: bool = False
) -> forms.Textarea:
    attrs: dict[str, Any] = {"rows": rows, "data-max-bytes": max_bytes}
    if json_required:
        attrs["data-json"] = "required"
    return forms.Textarea(attrs=attrs)


def _form_field(spec: FieldSpec) -> forms.Field:
    """A form field from a kind's field spec (messaging/kinds.py)."""
    errors = {"required": spec.required_message} if spec.required_message else None
    if spec.type == "account":
        return forms.CharField(
            label=spec.label,
            max_length=64,
            required=spec.required,
            help_text=spec.help,
            error_messages=errors,
            widget=forms.TextInput(
                attrs={"autocomplete": "off", "spellcheck": "false"}
            ),
        )
    if spec.type == "line":
        return forms.CharField(
            label=spec.label,
            max_length=spec.max_length,
            required=spec.required,
            help_text=spec.help,
            error_messages=errors,
        )
    if spec.type == "users":
        return forms.CharField(
            label=spec.label,
            required=spec.required,
            help_text=spec.help,
            widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        )
    return forms.CharField(
        label=spec.label,
        required=spec.required,
        help_text=spec.help,
        error_messages=errors,
        widget=_textarea(spec.max_bytes or 0, rows=spec.rows, json_required=spec.json),
    )


def message_fields(kind: str) -> dict[str, forms.Field]:
    """The message fields of one kind, with help from the provider documentation
    (recipient lists are asked for with the room: see SendForm)."""
    return {
        spec.name: _form_field(spec)
        for spec in KINDS[kind].fields
        if spec.type != "users"
    }


KIND_INTRO = {kind: spec.intro for kind, spec in KINDS.items()}


def kinds_for(app: ProviderApp) -> list[SendKind]:
    return [SendKind(k) for k in providers.kinds(app.provider)]


def _decode_upload(upload: UploadedFile) -> str:
    """The text of an uploaded TXT (one room per line) or CSV (first column) file."""
    try:
        return decode_room_file(upload.read())
    except ValueError as exc:
        raise forms.ValidationError(str(exc)) from None


@dataclass
class SendPlan:
    """What a valid send form will do, for the preview and the confirm step."""

    fields: dict[str, Any]
    body: dict[str, Any]
    rooms: list[str]
    room_list: RoomList | None
    scheduled_at: datetime | None
    tz_name: str
    variables: dict[str, str] = field(default_factory=dict)

    def request_fields(self, room_id: str | None = None) -> dict[str, Any]:
        """``fields`` for build_request / send_message, with ``room_id`` when needed."""
        data = dict(self.fields)
        if room_id is not None:
            data["room_id"] = room_id
        return data


class SendForm(forms.Form):
    """The message of one kind for one app: rooms, fields, template variables, time.

    A valid form has ``plan``: the filled fields, the rooms and the exact request
    body of the first room, as ``build_request`` returns it.
    """

    template = forms.ModelChoiceField(
        queryset=MessageTemplate.objects.none(),
        required=False,
        label=_("Start from a template"),
        empty_label=_("No template"),
    )
    scheduled_at = forms.CharField(
        label=_("Send at"),
        required=False,
        help_text=_(
            "Optional, in your time zone; empty sends now. A scheduled send can be cancelled until it runs."
        ),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    tz = forms.CharField(required=False, widget=forms.HiddenInput)
    # The broadcast body's de-duplication Random, fixed at preview so the confirmed
    # send is exactly the previewed body.
    random = forms.IntegerField(
        required=False, min_value=0, max_value=MAX_RANDOM, widget=forms.HiddenInput
    )

    def __init__(self, *args: Any, app: ProviderApp, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app, self.kind = app, SendKind(kind)
        self.spec = KINDS[self.kind]
        cast(
            forms.ModelChoiceField, self.fields["template"]
        ).queryset = MessageTemplate.objects.usable_for(app, kind)
        self.room_list: RoomList | None = None
        # An uploaded file's name and room IDs, sent back with the page when the form
        # has errors (a browser cannot refill a file input), so it need not be chosen again.
        self.kept_upload: tuple[str, str] | None = None
        self.plan: SendPlan | None = None
        room_fields: dict[str, forms.Field] = {}
        if self.spec.target == "rooms":
            room_fields = {
                "rooms": forms.CharField(
                    label=_("Room IDs"),
                    required=False,
                    help_text=_(
                        "RoomId of each live room, one per line: one room, or up to 10,000. "
                        "Duplicates and blank lines are removed."
                    ),
                    widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
                ),
                "rooms_file": forms.FileField(
                    label=_("Or upload room IDs"),
                    required=False,
                    help_text=_(
                        "A TXT file (one room ID per line) or a CSV file (room IDs in the first column)."
                    ),
                    widget=forms.FileInput(
                        attrs={"accept": ".txt,.csv,text/plain,text/csv"}
                    ),
                ),
            }
        elif self.spec.target == "room":
            room_fields = {
                "room_id": forms.CharField(
                    label=_("Room ID"),
                    max_length=128,
                    help_text=_("RoomId: the ZEGO room."),
                    error_messages={"required": _("Enter the room ID.")},
                    widget=forms.TextInput(attrs={"spellcheck": "false"}),
                ),
                "to_users": _form_field(KINDS[self.kind].field("to_users")),
            }
        self.room_field_names = list(room_fields)
        fields = message_fields(self.kind)
        self.message_field_names = list(fields)
        self.fields.update(room_fields)
        self.fields.update(fields)
        # Sender accounts default to the app's admin identifier, an account that exists.
        for name in ("sender", "from_user"):
            if name in self.fields:
                self.fields[name].initial = app.identifier
        self.variable_names = variables_in(
            self._raw(n) for n in self.message_field_names
        )
        for name in self.variable_names:
            self.fields[VAR_PREFIX + name] = forms.CharField(
                label=f"{{{name}}}",
                max_length=TENCENT_MESSAGE_BYTES,
                strip=False,
                help_text=gettext("Replaces %(variable)s in the message.")
                % {"variable": f"{{{name}}}"},
                error_messages={
                    "required": gettext("Enter a value for %(variable)s.")
                    % {"variable": f"{{{name}}}"}
                },
            )
        self.order_fields(["template", *room_fields, *fields])

    def _raw(self, name: str) -> str:
        if self.is_bound:
            return self.data.get(self.add_prefix(name), "") or ""
        return self.initial.get(name, self.fields[name].initial) or ""

    def sections(self) -> list[tuple[str, str, list[forms.BoundField]]]:
        """(key, heading, fields) groups in page order; the key names the group for
        the template, the heading is in the reader's language."""
        groups = [
            (
                "rooms",
                gettext("Room") if self.spec.target == "room" else gettext("Rooms"),
                self.room_field_names,
            ),
            ("message", gettext("Message"), self.message_field_names),
            (
                "variables",
                gettext("Template variables"),
                [VAR_PREFIX + n for n in self.variable_names],
            ),
            ("when", pgettext("send form section", "When"), ["scheduled_at"]),
        ]
        return [
            (key, title, [self[n] for n in names])
            for key, title, names in groups
            if names
        ]

    # -- cleaning -------------------------------------------------------------------
    def clean_tz(self) -> str:
        name = self.cleaned_data.get("tz", "").strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return settings.TIME_ZONE
        return name

    def clean_to_users(self) -> list[str]:
        raw = self.cleaned_data.get("to_users", "")
        users = list(dict.fromkeys(u for u in _SPLIT_USERS.split(raw) if u))
        if len(users) > ZEGO_MAX_RECIPIENTS:
            raise forms.ValidationError(
                gettext(
                    "%(count)s recipients; at most %(max)s. Leave it empty to reach the whole room."
                )
                % {"count": len(users), "max": ZEGO_MAX_RECIPIENTS}
            )
        return users

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.spec.target == "rooms":
            self._clean_rooms(data)
        scheduled = self._clean_schedule(data)
        variables = {
            n: data[VAR_PREFIX + n]
            for n in self.variable_names
            if VAR_PREFIX + n in data
        }
        filled: dict[str, Any] = {
            name: fill(data.get(name, ""), variables, strict=False)
            for name in self.message_field_names
        }
        if self.kind == SendKind.COMMAND:
            filled["to_users"] = data.get("to_users", [])
            rooms = [data["room_id"]] if data.get("room_id") else []
        elif self.kind == SendKind.BROADCAST:
            rooms = []
            if data.get("random") is not None:
                filled["random"] = data["random"]
        else:
            rooms = self.room_list.rooms if self.room_list else []
        # The provider's own checks run even when other fields have errors, so every
        # problem shows at once next to its field.
        body = self._build(filled, rooms)
        if body is None or self.errors:
            return data
        if self.kind == SendKind.BROADCAST:
            filled["random"] = body["Random"]
        self.plan = SendPlan(
            fields=filled,
            body=body,
            rooms=rooms,
            room_list=self.room_list,
            scheduled_at=scheduled,
            tz_name=data.get("tz") or settings.TIME_ZONE,
            variables=variables,
        )
        return data

    def _build(self, filled: dict[str, Any], rooms: list[str]) -> dict | None:
        """The request body of the first room, or None after adding the errors.

        Every further room is checked too, so a room ID the provider would reject
        stops the send here instead of failing in the middle of a batch.
        """
        needs_room = self.spec.target != "app"
        first = {**filled, "room_id": rooms[0]} if rooms else filled
        try:
            body = build_request(self.app, self.kind, first)
        except SendValidationError as exc:
            errors = exc.errors
            # The room field already says what is wrong with the rooms, and a
            # variable input says that it is missing: skip the follow-on errors.
            skip = {n for n in self.message_field_names if variables_in([filled[n]])}
            if needs_room and not rooms:
                skip.add("room_id")
            errors = {k: v for k, v in errors.items() if k not in skip}
            self.add_send_errors(errors)
            return None
        if self.errors:
            return None
        bad: list[str] = []
        for room in rooms[1:]:
            try:
                build_request(self.app, self.kind, {**filled, "room_id": room})
            except SendValidationError as exc:
                bad.append(f"{room[:60]}: {' '.join(exc.errors.get('room_id', []))}")
        if bad:
            shown = "; ".join(bad[:3])
            if len(bad) > 3:
                message = gettext(
                    "%(count)s room IDs would be rejected (%(shown)s; and %(more)s more)."
                )
            else:
                message = ngettext(
                    "%(count)s room ID would be rejected (%(shown)s).",
                    "%(count)s room IDs would be rejected (%(shown)s).",
                    len(bad),
                )
            self.add_error(
                self._room_field(),
                message
                % {
                    "count": f"{len(bad):,}",
                    "shown": shown,
                    "more": f"{len(bad) - 3:,}",
                },
            )
            return None
        return body

    def _room_field(self) -> str:
        return "rooms" if "rooms" in self.fields else "room_id"

    def _clean_rooms(self, data: dict[str, Any]) -> None:
        texts = [data.get("rooms", "")]
        upload = data.get("rooms_file")
        uploaded = ""
        if upload:
            try:
                uploaded = _decode_upload(upload)
            except forms.ValidationError as exc:
                self.add_error("rooms_file", exc)
                return
            self.kept_upload = (upload.name or gettext("uploaded file"), uploaded)
        elif self.data.get(self.add_prefix("rooms_kept")):
            uploaded = str(self.data[self.add_prefix("rooms_kept")])
            name = str(self.data.get(self.add_prefix("rooms_kept_name")) or "")
            self.kept_upload = (name[:200] or gettext("uploaded file"), uploaded)
        if uploaded:
            texts.append(uploaded)
        # Problems of a list that came (partly) from the file are shown under it.
        field = "rooms_file" if uploaded else "rooms"
        room_list = parse_room_ids(*texts, provider=self.app.provider)
        self.room_list = room_list
        if room_list.invalid:
            shown = "; ".join(
                f"{room[:40]}: {why}" for room, why in room_list.invalid[:3]
            )
            more = len(room_list.invalid) - 3
            count = len(room_list.invalid)
            if more > 0:
                message = gettext(
                    "%(count)s room IDs are not valid (%(shown)s; and %(more)s more)."
                )
            else:
                message = ngettext(
                    "%(count)s room ID is not valid (%(shown)s).",
                    "%(count)s room IDs are not valid (%(shown)s).",
                    count,
                )
            self.add_error(
                field,
                message % {"count": f"{count:,}", "shown": shown, "more": f"{more:,}"},
            )
        elif not room_list.rooms:
            self.add_error(
                field,
                gettext("Enter at least one room ID, or upload a file of room IDs."),
            )
        elif room_list.too_many:
            self.add_error(
                field,
                gettext(
                    "At most %(max)s rooms per send; this list has %(count)s. Split it."
                )
                % {"max": f"{MAX_ROOMS:,}", "count": f"{len(room_list.rooms):,}"},
            )

    def _clean_schedule(self, data: dict[str, Any]) -> datetime | None:
        raw = (data.get("scheduled_at") or "").strip()
        if not raw:
            return None
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            self.add_error(
                "scheduled_at",
                gettext("Enter a date and time, like 2026-12-31 18:00."),
            )
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=ZoneInfo(data.get("tz") or settings.TIME_ZONE))
        when = when.astimezone(UTC)
        if when <= timezone.now():
            self.add_error(
                "scheduled_at",
                gettext(
                    "This time has passed. Pick a later time, or leave it empty to send now."
                ),
            )
            return None
        return when

    def add_send_errors(self, errors: dict[str, list[str]]) -> None:
        """Show ``SendValidationError.errors`` next to the fields they concern.

        A field that already has an error from the form keeps only that one (the
        provider check often says the same thing about an empty field).
        """
        for key, messages in errors.items():
            name: str | None = self._room_field() if key == "room_id" else key
            if name not in self.fields:
                name = None
            elif name in self.errors:
                continue
            for message in messages:
                self.add_error(name, message)

    # -- carrying the typed values through the preview ---------------------------------
    def carried_values(self) -> list[tuple[str, str]]:
        """Every typed value, for the hidden inputs of the preview's confirm form.

        Rooms are carried as the cleaned list, so an uploaded file need not be sent
        again and the confirm step sees exactly the previewed rooms.
        """
        values = [
            (name, str(self.data.get(self.add_prefix(name), "")))
            for name in self.fields
            if name not in ("rooms", "rooms_file", "random")
        ]
        if self.room_list is not None:
            values.append(("rooms", "\n".join(self.room_list.rooms)))
        if self.plan and "random" in self.plan.fields:
            values.append(("random", str(self.plan.fields["random"])))
        return [(n, v) for n, v in values if v]


def template_initial(template: MessageTemplate) -> dict[str, str]:
    """Initial send-form values from a template's saved fields."""
    return {
        name: str(template.fields.get(name, ""))
        for name in TEMPLATE_FIELDS[template.kind]
    }
