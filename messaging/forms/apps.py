"""The provider app form."""

from __future__ import annotations

from django import forms

from messaging.models import ProviderApp
from messaging.services import apps


class ProviderAppForm(forms.ModelForm):
    """Create or edit a provider app.

    The secret key and webhook token are write-only: the fields are never filled
    from the database, and leaving them empty on edit keeps the stored value.
    """

    secret_key = forms.CharField(
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password"}
        ),
        required=False,
        strip=True,
        help_text="Stored encrypted; it is never shown again. Leave empty to keep the current key.",
    )
    webhook_token = forms.CharField(
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "new-password"}
        ),
        required=False,
        strip=True,
        help_text="Optional. Set it to verify the provider's Sign on webhook calls. Leave empty to keep the current token.",
    )
    clear_webhook_token = forms.BooleanField(
        required=False, label="Remove the webhook token"
    )
    base_url = forms.CharField(
        label="Base URL override",
        required=False,
        max_length=200,
        help_text="For private deployments and the sandbox, e.g. http://127.0.0.1:8000/sandbox. "
        "Empty: the region's API domain.",
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
            label="SDKAppID / AppId",
            max_length=20,
            widget=forms.TextInput(attrs={"inputmode": "numeric"}),
            help_text="The numeric app ID from the provider's console.",
        )
        if self.instance.pk is None:
            self.fields["secret_key"].required = True
            self.fields[
                "secret_key"
            ].help_text = "Stored encrypted; it is never shown again."
            del self.fields["clear_webhook_token"]
        else:
            self.initial["app_id"] = str(self.instance.app_id)
            if not self.instance.webhook_token:
                del self.fields["clear_webhook_token"]
        # Never pre-fill secrets, whatever the instance holds.
        self.initial.pop("secret_key", None)
        self.initial.pop("webhook_token", None)

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
