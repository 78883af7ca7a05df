from __future__ import annotations

import json
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from messaging.models import ProviderApp
from webhooks import services
from webhooks.labels import ACTION_CHOICES, DECISION_CHOICES, KIND_CHOICES
from webhooks.models import (
    Blocklist,
    BlocklistChange,
)

MAX_IMPORT_BYTES = 5 * 1024 * 1024


class BlocklistForm(forms.ModelForm):
    # Blocklists answer Tencent's before-send webhook; ZEGO has none.
    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.filter(provider="tencent"),
        required=False,
        empty_label=_("All apps"),
        label=_("App"),
        help_text=_("Empty: the list applies to every app."),
    )

    class Meta:
        model = Blocklist
        fields = ["name", "app", "note", "enabled"]
        labels = {"name": _("Name"), "note": _("Note"), "enabled": _("Enabled")}
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Enter a name."))
        clash = Blocklist.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("Another list has that name."))
        return name


class EntryForm(forms.Form):
    """One entry; validation is the service's (the import uses the same rules)."""

    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="word", label=_("Kind"))
    term = forms.CharField(max_length=services.MAX_TERM, strip=True, label=_("Term"))
    action = forms.ChoiceField(
        choices=ACTION_CHOICES, initial="forbid", label=_("Action")
    )
    code = forms.IntegerField(
        required=False,
        label=_("Error code"),
        help_text=_("Only for “forbid with my code”: 10100-10200."),
        widget=forms.NumberInput(attrs={"placeholder": "10100"}),
    )
    info = forms.CharField(
        required=False,
        max_length=200,
        label=_("Error text"),
        help_text=_("Shown to the sender with the code."),
    )
    expires_at = forms.DateTimeField(
        required=False,
        label=_("Expires"),
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        ),
    )
    note = forms.CharField(required=False, max_length=500, label=_("Note"))
    exact = forms.BooleanField(
        required=False,
        label=_("Exact spelling"),
        help_text=_(
            "No accent or look-alike folding: “bád” and “bаd” (Cyrillic а) no longer match “bad”."
        ),
    )
    leet = forms.BooleanField(
        required=False,
        label=_("Leet"),
        help_text=_(
            "Also read digits and symbols as letters: 0 o, 1 i l, 3 e, 4 a, 5 s, 7 t, @ a, $ s."
        ),
    )
    review = forms.BooleanField(
        required=False,
        label=_("Also queue for review"),
        help_text=_("Put the messages it catches in the review queue too."),
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if "term" not in data or "kind" not in data or "action" not in data:
            return data
        if data["action"] in ("discard", "mask") or data["kind"] == "allow":
            # The code fields stay filled when a moderator switches an entry from
            # "forbid with my code" to discard or mask: they no longer apply.
            data["code"], data["info"] = None, ""
        values, errors = services.clean_entry(
            kind=data["kind"],
            term=data["term"],
            action=data["action"],
            code=data.get("code"),
            info=data.get("info", ""),
            exact=data.get("exact", False),
            leet=data.get("leet", False),
        )
        for name, messages in errors.items():
            for message in messages:
                self.add_error(name, message)
        data.update(values)
        return data

    def entry_fields(self) -> dict[str, Any]:
        d = self.cleaned_data
        return {
            k: d.get(k)
            for k in (
                "kind",
                "term",
                "action",
                "code",
                "info",
                "expires_at",
                "exact",
                "leet",
            )
        } | {"note": d.get("note", ""), "review": bool(d.get("review"))}


class ImportForm(forms.Form):
    file = forms.FileField(
        label=_("File"),
        help_text=_(
            "TXT (one term per line), CSV (term, kind, action, code, info, expires_at, note, exact, leet) or JSONL."
        ),
    )
    kind = forms.ChoiceField(
        choices=KIND_CHOICES,
        initial="word",
        label=_("Kind when a line has none"),
    )
    action = forms.ChoiceField(
        choices=ACTION_CHOICES,
        initial="forbid",
        label=_("Action when a line has none"),
    )
    exact = forms.BooleanField(
        required=False, label=_("Exact when a line does not say")
    )
    leet = forms.BooleanField(required=False, label=_("Leet when a line does not say"))

    def clean_file(self) -> tuple[str, str]:
        upload = self.cleaned_data["file"]
        name = upload.name.lower()
        fmt = name.rsplit(".", 1)[-1] if "." in name else ""
        if fmt not in ("txt", "csv", "jsonl"):
            raise forms.ValidationError(_("Upload a .txt, .csv or .jsonl file."))
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(_("The file is over 5 MB."))
        try:
            content = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from None
        return fmt, content


class TryForm(forms.Form):
    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.filter(provider="tencent", enabled=True),
        empty_label=None,
        label=_("App"),
    )
    sender = forms.CharField(
        max_length=128, initial="user-1", label=_("Sender (From_Account)")
    )
    text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label=_("Message text"),
    )
    body = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        label=_("Or a whole before-send body (JSON)"),
        help_text=_(
            "Overrides the text and sender: the exact body the provider would post."
        ),
    )

    def clean_body(self) -> dict | None:
        raw = self.cleaned_data["body"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(
                _("Not JSON: %(error)s"), params={"error": exc}
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("The body must be a JSON object."))
        return value

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("text") and not data.get("body") and not self.has_error("body"):
            self.add_error("text", _("Type a message, or paste a body."))
        return data


class DecisionFilterForm(forms.Form):
    # The before-send webhook is Tencent's: only its enabled apps have decisions to read.
    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.filter(provider="tencent", enabled=True),
        required=False,
        empty_label=_("All apps"),
        label=_("App"),
    )
    action = forms.ChoiceField(
        choices=[("", _("All actions")), *DECISION_CHOICES],
        required=False,
        label=_("Action"),
    )
    room = forms.CharField(required=False, max_length=128, label=_("Room"))
    sender = forms.CharField(required=False, max_length=128, label=_("Sender"))
    entry = forms.IntegerField(required=False, min_value=1, label=_("Entry ID"))
    since = forms.DateTimeField(
        required=False,
        label=_("From"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        required=False,
        label=_("Until"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    q = forms.CharField(required=False, max_length=200, label=_("Text contains"))

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("“Until” is before “From”."))
        return data


class ChangeFilterForm(forms.Form):
    object_type = forms.ChoiceField(
        choices=[
            ("", _("Lists and entries")),
            ("blocklist", _("Lists")),
            ("entry", _("Entries")),
            ("sanction", _("Sanctions")),
            ("escalation", _("Escalation rules")),
        ],
        required=False,
        label=_("Object"),
    )
    action = forms.ChoiceField(
        choices=[("", _("All changes")), *BlocklistChange.Action.choices],
        required=False,
        label=pgettext_lazy("change history", "Action"),
    )
    actor = forms.CharField(required=False, max_length=150, label=_("Who"))
