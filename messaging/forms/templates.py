"""The message template form: name, app, kind and the kind's fields with {variables}."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from messaging import providers
from messaging.forms.send import message_fields
from messaging.models import (
    TEMPLATE_FIELDS,
    MessageTemplate,
    ProviderApp,
    SendKind,
)

# The fields that carry a kind's message: a template must fill one of them (a text
# template without text would send nothing).
CONTENT_FIELDS: dict[str, tuple[str, ...]] = {
    SendKind.TEXT: ("text",),
    SendKind.CUSTOM: ("data",),
    SendKind.BROADCAST: ("text", "custom_data"),
    SendKind.COMMAND: ("content",),
}


class MessageTemplateForm(forms.ModelForm):
    """Name, app (or all apps), kind, and the kind's message fields with {variables}."""

    class Meta:
        model = MessageTemplate
        fields = ["name", "app", "kind"]
        labels = {"name": _("Name"), "app": _("App"), "kind": _("Kind")}
        help_texts = {
            "name": _("Shown in the template picker of the send page."),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app_field = cast(forms.ModelChoiceField, self.fields["app"])
        app_field.queryset = ProviderApp.objects.filter(enabled=True)
        app_field.empty_label = gettext("All apps")
        self.fields["app"].help_text = gettext(
            "Empty: offered for every app whose provider has this kind."
        )
        self.fields["kind"].help_text = gettext(
            "Text, custom and broadcast are Tencent kinds; custom command is ZEGO."
        )
        cast(forms.ChoiceField, self.fields["kind"]).choices = [
            (value, label)
            for value, label in SendKind.choices
            if value in TEMPLATE_FIELDS
        ]
        kind = self._kind()
        self.message_field_names: list[str] = []
        if kind:
            for name, f in message_fields(kind).items():
                if name not in TEMPLATE_FIELDS[kind]:
                    continue
                # A template may leave any field for the send form; variables make
                # byte counts and JSON checks meaningful only once filled.
                f.required = False
                f.help_text = gettext("%(help)s Use {name} for a variable.") % {
                    "help": f.help_text
                }
                f.widget.attrs.pop("data-json", None)
                self.fields[name] = f
                self.message_field_names.append(name)
                if self.instance.pk and self.instance.kind == kind:
                    self.initial.setdefault(name, self.instance.fields.get(name, ""))

    def _kind(self) -> str:
        raw = self.data.get(self.add_prefix("kind")) if self.is_bound else None
        raw = raw or self.initial.get("kind") or self.instance.kind or SendKind.TEXT
        return raw if raw in SendKind.values else ""

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        app, kind = data.get("app"), data.get("kind")
        if app and kind and kind not in providers.kinds(app.provider):
            names = ", ".join(
                str(SendKind(k).label).lower() for k in providers.kinds(app.provider)
            )
            label = providers.provider(app.provider).LABEL
            self.add_error(
                "kind",
                gettext("%(app)s is a %(provider)s app: pick %(kinds)s.")
                % {"app": app.name, "provider": label, "kinds": names},
            )
        if kind and not any(data.get(n) for n in self.message_field_names):
            self.add_error(
                None,
                gettext(
                    "Fill in at least one message field; otherwise there is nothing to reuse."
                ),
            )
        elif kind in CONTENT_FIELDS:
            content = [n for n in CONTENT_FIELDS[kind] if n in self.fields]
            if content and not any(str(data.get(n) or "").strip() for n in content):
                labels = [str(self[n].label).lower() for n in content]
                if len(labels) == 1:
                    message = gettext("A template needs the %(field)s.") % {
                        "field": labels[0]
                    }
                else:
                    message = gettext(
                        "A template needs the %(first)s or %(second)s."
                    ) % {"first": labels[0], "second": labels[1]}
                self.add_error(content[0], message)
        return data

    def save(self, commit: bool = True) -> MessageTemplate:
        template = super().save(commit=False)
        template.fields = {
            n: self.cleaned_data.get(n, "") for n in self.message_field_names
        }
        if commit:
            template.save()
        return template
