from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from messaging.models import Outcome, ProviderApp, SendKind
from messaging.services import apps
from messaging.services.audit import Cursor, LogFilter


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


class AuditFilterForm(forms.Form):
    """The audit log's filters, read from the query string (bookmarkable).

    Cleaning turns the input into a ``LogFilter`` and the paging cursors; times
    are read in the time zone active for the request (the user's, see the view).
    """

    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.order_by("name"), required=False, empty_label="Any"
    )
    kind = forms.ChoiceField(choices=[("", "Any"), *SendKind.choices], required=False)
    outcome = forms.ChoiceField(choices=[("", "Any"), *Outcome.choices], required=False)
    error_code = forms.IntegerField(
        label="Error code", required=False, widget=forms.TextInput()
    )
    room = forms.CharField(label="Room", required=False, max_length=128)
    sender = forms.CharField(required=False, max_length=64)
    user = forms.CharField(label="User", required=False, max_length=150)
    request_id = forms.CharField(label="RequestId", required=False, max_length=128)
    msg_seq = forms.IntegerField(
        label="MsgSeq", required=False, widget=forms.TextInput()
    )
    since = forms.DateTimeField(
        label="From",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        label="Until",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Exclusive.",
    )
    # The browser's IANA time zone, filled in by the page's script.
    tz = forms.CharField(required=False, widget=forms.HiddenInput())
    after = forms.CharField(required=False, widget=forms.HiddenInput())
    before = forms.CharField(required=False, widget=forms.HiddenInput())

    def __init__(self, *args: Any, show_user: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not show_user:
            # A community manager sees only their own sends: no user filter.
            del self.fields["user"]

    def clean_user(self) -> Any:
        username = self.cleaned_data["user"].strip()
        if not username:
            return None
        User = get_user_model()
        try:
            return User.objects.get(**{User.USERNAME_FIELD: username})
        except User.DoesNotExist:
            raise forms.ValidationError(f"No user is called “{username}”.") from None

    def _clean_cursor(self, name: str) -> Cursor | None:
        raw = self.cleaned_data[name].strip()
        if not raw:
            return None
        try:
            return Cursor.decode(raw)
        except ValueError:
            raise forms.ValidationError(
                "This paging link is broken; start again from the first page."
            ) from None

    def clean_after(self) -> Cursor | None:
        return self._clean_cursor("after")

    def clean_before(self) -> Cursor | None:
        return self._clean_cursor("before")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "Must be later than “From”.")
        return data

    def log_filter(self) -> LogFilter:
        """The LogFilter of a valid form."""
        data = self.cleaned_data
        user = data.get("user")
        return LogFilter(
            app=data["app"],
            kind=data["kind"],
            outcome=data["outcome"],
            error_code=data["error_code"],
            room=data["room"].strip(),
            sender=data["sender"].strip(),
            user_id=user.pk if user is not None else None,
            request_id=data["request_id"].strip(),
            msg_seq=data["msg_seq"],
            since=data["since"],
            until=data["until"],
        )
