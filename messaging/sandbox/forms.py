from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from messaging.models import ProviderApp
from messaging.sandbox.models import SandboxApp, SandboxRoom
from messaging.sandbox.services import MUTE_FOREVER, validate_account, validate_room_id


def app_label(app: SandboxApp, names: dict[tuple[str, int], str]) -> str:
    name = names.get((app.provider, app.app_id))
    return f"{name} ({app.provider} {app.app_id})" if name else str(app)


def dashboard_names() -> dict[tuple[str, int], str]:
    """Names of the dashboard apps, to label the sandbox apps that mirror them."""
    return {
        (provider, app_id): name
        for provider, app_id, name in ProviderApp.objects.values_list(
            "provider", "app_id", "name"
        )
    }


class SandboxAppField(forms.ModelChoiceField):
    """Sandbox apps labelled with the names of the dashboard apps they mirror."""

    _names: dict[tuple[str, int], str] | None = None

    def label_from_instance(self, obj: SandboxApp) -> str:
        # Each form gets its own copy of the field: one query per rendered form.
        if self._names is None:
            self._names = dashboard_names()
        return app_label(obj, self._names)


class RoomForm(forms.Form):
    app = SandboxAppField(
        queryset=SandboxApp.objects.all(), empty_label=None, label=_("App")
    )
    room_id = forms.CharField(
        label=_("Room ID"),
        max_length=200,
        help_text=_("Printable ASCII, at most 48 bytes, e.g. demo-room."),
    )
    live = forms.BooleanField(
        required=False,
        initial=True,
        label=_("Live room (a room that is not live answers 100006)"),
    )

    def clean_room_id(self) -> str:
        return validate_room_id(self.cleaned_data["room_id"])

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        app, room_id = data.get("app"), data.get("room_id")
        if (
            app
            and room_id
            and SandboxRoom.objects.filter(app=app, room_id=room_id).exists()
        ):
            self.add_error("room_id", _("This app already has a room with this ID."))
        return data


class MuteForm(forms.Form):
    account = forms.CharField(label=_("User ID"), max_length=100)
    seconds = forms.IntegerField(
        label=_("Mute for (seconds)"),
        min_value=0,
        max_value=MUTE_FOREVER,
        initial=600,
        help_text=_("0 unmutes; 4294967295 mutes for ever."),
    )

    def clean_account(self) -> str:
        try:
            return validate_account(self.cleaned_data["account"])
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None


class MirrorForm(forms.Form):
    """Copy a dashboard app (id, secret, admin identifier, webhook token) into the sandbox."""

    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.all(),
        label=_("Dashboard app"),
        help_text=_(
            "Its base URL must point at this site's /sandbox for sends to land here."
        ),
    )
    rooms = forms.CharField(
        required=False,
        label=_("Rooms to create"),
        help_text=_("Room IDs separated by commas, e.g. demo-room, lobby."),
    )

    def clean_rooms(self) -> list[str]:
        rooms = []
        for raw in self.cleaned_data["rooms"].split(","):
            if raw.strip():
                try:
                    rooms.append(validate_room_id(raw))
                except ValidationError as exc:
                    raise forms.ValidationError(
                        _("%(room)s: %(problem)s")
                        % {"room": repr(raw.strip()), "problem": exc.messages[0]}
                    ) from None
        return rooms
