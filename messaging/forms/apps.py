"""The provider app form."""

from __future__ import annotations

import json

from django import forms
from django.utils.translation import gettext_lazy as _

from messaging import providers
from messaging.models import ProviderApp
from messaging.services import apps

NEW_TOKEN_HELP = _("Optional. Set it to verify the provider's Sign on webhook calls.")


class ProviderAppForm(forms.ModelForm):
    """Create or edit a provider app.

    The secret key and webhook token are write-only: the fields are never filled
    from the database, and leaving them empty on edit keeps the stored value.
    """

    secret_key = forms.CharField(
        label=_("Secret key"),
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password"}
        ),
        required=False,
        strip=True,
        help_text=_(
            "Stored encrypted; it is never shown again. Leave empty to keep the current key."
        ),
    )
    webhook_token = forms.CharField(
        label=_("Webhook token"),
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password"}
        ),
        required=False,
        strip=True,
        help_text=_(
            "Optional. Set it to verify the provider's Sign on webhook calls. Leave empty to keep the current token."
        ),
    )
    clear_webhook_token = forms.BooleanField(
        required=False, label=_("Remove the webhook token")
    )
    base_url = forms.CharField(
        label=_("Base URL override"),
        required=False,
        max_length=200,
        help_text=_(
            "For private deployments and the sandbox, e.g. http://127.0.0.1:8000/sandbox. "
            "Empty: the region's API domain."
        ),
    )

    class Meta:
        model = ProviderApp
        fields = [
            "name",
            "provider",
            "app_id",
            "region",
            "identifier",
            "secret_key",
            "webhook_token",
            "base_url",
            "rate_limit",
            "broadcast_requires_approval",
            "at_least_once",
            "test_environment",
            "webhook_fail_closed",
        ]
        widgets = {"app_id": forms.TextInput(attrs={"inputmode": "numeric"})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["app_id"] = forms.CharField(
            label=_("SDKAppID / AppId"),
            max_length=20,
            widget=forms.TextInput(attrs={"inputmode": "numeric"}),
            help_text=_("The numeric app ID from the provider's console."),
        )
        if self.instance.pk is None:
            self.fields["secret_key"].required = True
            self.fields["secret_key"].help_text = _(
                "Stored encrypted; it is never shown again."
            )
            del self.fields["clear_webhook_token"]
            self.fields["webhook_token"].help_text = NEW_TOKEN_HELP
        else:
            self.initial["app_id"] = str(self.instance.app_id)
            if not self.instance.webhook_token:
                del self.fields["clear_webhook_token"]
        # Never pre-fill secrets, whatever the instance holds.
        self.initial.pop("secret_key", None)
        self.initial.pop("webhook_token", None)
        self._offer_regions_of_the_provider()

    def _offer_regions_of_the_provider(self) -> None:
        """The region menu lists the chosen provider's regions only; the page's script
        (static/js/app_form.js) swaps them when the provider changes."""
        by_provider = {
            name: [
                [key, str(label)]
                for key, (label, _domain) in providers.regions(name).items()
            ]
            for name in providers.PROVIDERS
        }
        self.fields["provider"].widget.attrs["data-regions"] = json.dumps(by_provider)
        provider = (
            self.data.get(self.add_prefix("provider"))
            if self.is_bound
            else self.initial.get("provider") or self.instance.provider
        )
        if provider in by_provider:
            # Rendering only: validation keeps every region, so a region of the other
            # provider gets the service's explanation rather than "not a valid choice".
            self.fields["region"].widget.choices = [
                ("", "---------"),
                *[(key, label) for key, label in by_provider[provider]],
            ]

    @property
    def secrets_not_kept(self) -> list[str]:
        """Secret fields typed into a form that came back with errors: they are never
        sent back to the browser, so the page says they must be typed again."""
        if not self.is_bound or not self.errors:
            return []
        return [
            str(self[name].label)
            for name in ("secret_key", "webhook_token")
            if name in self.fields and self.data.get(self.add_prefix(name))
        ]

    # Validation is the service's, shared with the addapp command.
    def clean_app_id(self) -> int:
        return apps.clean_app_id(self.cleaned_data["app_id"])

    def clean_identifier(self) -> str:
        return apps.clean_identifier(self.cleaned_data["identifier"])

    def clean_base_url(self) -> str:
        return apps.clean_base_url(self.cleaned_data["base_url"])

    def clean(self) -> dict:
        super().clean()
        data = self.cleaned_data
        provider, region = data.get("provider"), data.get("region")
        if provider and region:
            problem = apps.region_error(provider, region)
            if problem:
                self.add_error("region", problem)
        return data

    def save(self, commit: bool = True) -> ProviderApp:
        app = super().save(commit=False)
        # ModelForm copied the (possibly empty) secret fields onto the instance:
        # restore the stored value when nothing new was typed.
        if not self.cleaned_data.get("secret_key") and self.instance.pk:
            app.secret_key = ProviderApp.objects.get(pk=app.pk).secret_key
        if self.cleaned_data.get("clear_webhook_token"):
            app.webhook_token = ""
        elif not self.cleaned_data.get("webhook_token") and self.instance.pk:
            app.webhook_token = ProviderApp.objects.get(pk=app.pk).webhook_token
        if commit:
            app.save()
        return app
