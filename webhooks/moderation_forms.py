"""Forms of the moderation pages: mutes, escalation rules, review actions."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from messaging.models import ProviderApp
from webhooks import moderation, services
from webhooks.labels import ACTION_CHOICES, KIND_CHOICES
from webhooks.models import Blocklist, SanctionKind


class MuteForm(forms.Form):
    minutes = forms.TypedChoiceField(
        choices=moderation.MUTE_CHOICES, coerce=int, initial=10, label=_("For")
    )
    scope = forms.ChoiceField(
        choices=[("app", _("Whole app")), ("room", _("This room only"))],
        initial="app",
        label=_("Where"),
    )
    room_id = forms.CharField(
        required=False,
        max_length=128,
        label=_("Room"),
        help_text=_("For “this room only”."),
    )
    reason = forms.CharField(required=False, max_length=500, label=_("Reason"))

    def __init__(
        self, *args: Any, fixed_room: str | None = None, **kwargs: Any
    ) -> None:
        """``fixed_room``: muting the sender of a decision, whose room is known."""
        super().__init__(*args, **kwargs)
        self.fixed_room = fixed_room
        if fixed_room is not None:
            del self.fields["room_id"]
            self.fields["scope"].choices = [  # type: ignore[attr-defined]
                ("app", _("Whole app")),
                ("room", gettext("Room %(room)s only") % {"room": fixed_room}),
            ]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.fixed_room is not None:
            data["room_id"] = self.fixed_room if data.get("scope") == "room" else ""
            return data
        if data.get("scope") == "room" and not (data.get("room_id") or "").strip():
            self.add_error(
                "room_id", gettext("Enter the room, or mute in the whole app.")
            )
        if data.get("scope") == "app":
            data["room_id"] = ""
        return data


class EscalationForm(forms.Form):
    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.filter(provider="tencent"),
        empty_label=None,
        label=_("App"),
    )
    hits = forms.IntegerField(min_value=1, max_value=10_000, initial=3, label=_("Hits"))
    within_seconds = forms.IntegerField(
        min_value=1, max_value=7 * 24 * 3600, initial=60, label=_("Within (seconds)")
    )
    sanction = forms.ChoiceField(
        choices=[
            (SanctionKind.MUTE, _("Mute them")),
            (SanctionKind.FLAG, _("Flag everything from them")),
        ],
        initial=SanctionKind.MUTE,
        label=_("Then"),
    )
    minutes = forms.IntegerField(
        min_value=0,
        max_value=moderation.MAX_MINUTES,
        initial=10,
        label=_("For (minutes)"),
        help_text=_("0: permanently."),
    )
    room_only = forms.BooleanField(
        required=False, label=_("Only in the room of the hits")
    )


class AddTermForm(forms.Form):
    blocklist = forms.ModelChoiceField(
        queryset=Blocklist.objects.all(), empty_label=None, label=_("List")
    )
    term = forms.CharField(max_length=services.MAX_TERM, label=_("Term"))
    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="word", label=_("Kind"))
    action = forms.ChoiceField(
        choices=ACTION_CHOICES, initial="forbid", label=_("Action")
    )
