from __future__ import annotations

import json
from typing import Any

from django import forms

from messaging.models import ProviderApp
from webhooks import services
from webhooks.models import (
    Blocklist,
    BlocklistChange,
)
from webhooks.vocabulary import ACTION_CHOICES, DECISION_CHOICES, KIND_CHOICES

MAX_IMPORT_BYTES = 5 * 1024 * 1024


class BlocklistForm(forms.ModelForm):
    # Blocklists answer Tencent's before-send webhook; ZEGO has none.
    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.filter(provider="tencent"),
        required=False,
        empty_label="All apps",
        help_text="Empty: the list applies to every app.",
    )

    class Meta:
        model = Blocklist
        fields = ["name", "app", "note", "enabled"]
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Enter a name.")
        clash = Blocklist.objects.filter(name__iexact=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError("Another list has that name.")
        return name


class EntryForm(forms.Form):
    """One entry; validation is the service's (the import uses the same rules)."""

    kind = forms.ChoiceField(choices=KIND_CHOICES, initial="word")
    term = forms.CharField(max_length=services.MAX_TERM, strip=True)
    action = forms.ChoiceField(choices=ACTION_CHOICES, initial="forbid")
    code = forms.IntegerField(
        required=False,
        label="Error code",
        help_text="Only for “forbid with my code”: 10100-10200.",
        widget=forms.NumberInput(attrs={"placeholder": "10100"}),
    )
    info = forms.CharField(
        required=False,
        max_length=200,
        label="Error text",
        help_text="Shown to the sender with the code.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        widget=forms.DateTimeInput(
            attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
        ),
    )
    note = forms.CharField(required=False, max_length=500)
    exact = forms.BooleanField(
        required=False,
        label="Exact spelling",
        help_text="No accent or look-alike folding: “bád” and “bаd” (Cyrillic а) no longer match “bad”.",
    )
    leet = forms.BooleanField(
        required=False,
        label="Leet",
        help_text="Also read digits and symbols as letters: 0 o, 1 i l, 3 e, 4 a, 5 s, 7 t, @ a, $ s.",
    )
    review = forms.BooleanField(
        required=False,
        label="Also queue for review",
        help_text="Put the messages it catches in the review queue too.",
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
        help_text="TXT (one term per line), CSV (term, kind, action, code, info, expires_at, note, exact, leet) or JSONL."
    )
    kind = forms.ChoiceField(
        choices=KIND_CHOICES,
        initial="word",
        label="Kind when a line has none",
    )
    action = forms.ChoiceField(
        choices=ACTION_CHOICES,
        initial="forbid",
        label="Action when a line has none",
    )
    exact = forms.BooleanField(required=False, label="Exact when a line does not say")
    leet = forms.BooleanField(required=False, label="Leet when a line does not say")

    def clean_file(self) -> tuple[str, str]:
        upload = self.cleaned_data["file"]
        name = upload.name.lower()
        fmt = name.rsplit(".", 1)[-1] if "." in name else ""
        if fmt not in ("txt", "csv", "jsonl"):
            raise forms.ValidationError("Upload a .txt, .csv or .jsonl file.")
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError("The file is over 5 MB.")
        try:
            content = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError("The file is not UTF-8 text.") from None
        return fmt, content


class TryForm(forms.Form):
    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.filter(provider="tencent", enabled=True),
        empty_label=None,
    )
    sender = forms.CharField(
        max_length=128, initial="user-1", label="Sender (From_Account)"
    )
    text = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Message text",
    )
    body = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        label="Or a whole before-send body (JSON)",
        help_text="Overrides the text and sender: the exact body the provider would post.",
    )

    def clean_body(self) -> dict | None:
        raw = self.cleaned_data["body"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The body must be a JSON object.")
        return value

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not data.get("text") and not data.get("body") and not self.has_error("body"):
            self.add_error("text", "Type a message, or paste a body.")
        return data


class DecisionFilterForm(forms.Form):
    # The before-send webhook is Tencent's: only its enabled apps have decisions to read.
    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.filter(provider="tencent", enabled=True),
        required=False,
        empty_label="All apps",
    )
    action = forms.ChoiceField(
        choices=[("", "All actions"), *DECISION_CHOICES], required=False
    )
    room = forms.CharField(required=False, max_length=128)
    sender = forms.CharField(required=False, max_length=128)
    entry = forms.IntegerField(required=False, min_value=1, label="Entry ID")
    since = forms.DateTimeField(
        required=False,
        label="From",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        required=False,
        label="Until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    q = forms.CharField(required=False, max_length=200, label="Text contains")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "“Until” is before “From”.")
        return data


class ChangeFilterForm(forms.Form):
    object_type = forms.ChoiceField(
        choices=[
            ("", "Lists and entries"),
            ("blocklist", "Lists"),
            ("entry", "Entries"),
            ("sanction", "Sanctions"),
            ("escalation", "Escalation rules"),
        ],
        required=False,
        label="Object",
    )
    action = forms.ChoiceField(
        choices=[("", "All changes"), *BlocklistChange.Action.choices], required=False
    )
    actor = forms.CharField(required=False, max_length=150, label="Who")
