"""The send log's filter form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from messaging.models import Outcome, ProviderApp, SendKind
from messaging.services.audit import Cursor, LogFilter


class AuditFilterForm(forms.Form):
    """The audit log's filters, read from the query string (bookmarkable).

    Cleaning turns the input into a ``LogFilter`` and the paging cursors; times
    are read in the time zone active for the request (the user's, see the view).
    """

    app = forms.ModelChoiceField(
        queryset=ProviderApp.objects.order_by("name"),
        required=False,
        empty_label=_("Any"),
        label=_("App"),
    )
    kind = forms.ChoiceField(
        label=_("Kind"), choices=[("", _("Any")), *SendKind.choices], required=False
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=[("", _("Any")), *Outcome.choices], required=False
    )
    error_code = forms.IntegerField(
        label=_("Error code"), required=False, widget=forms.TextInput()
    )
    room = forms.CharField(label=_("Room"), required=False, max_length=128)
    sender = forms.CharField(label=_("Sender"), required=False, max_length=64)
    user = forms.CharField(label=_("User"), required=False, max_length=150)
    request_id = forms.CharField(label="RequestId", required=False, max_length=128)
    msg_seq = forms.IntegerField(
        label="MsgSeq", required=False, widget=forms.TextInput()
    )
    since = forms.DateTimeField(
        label=_("From"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = forms.DateTimeField(
        label=_("Until"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=_("Exclusive."),
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
            raise forms.ValidationError(
                gettext("No user is called “%(name)s”.") % {"name": username}
            ) from None

    def _clean_cursor(self, name: str) -> Cursor | None:
        raw = self.cleaned_data[name].strip()
        if not raw:
            return None
        try:
            return Cursor.decode(raw)
        except ValueError:
            raise forms.ValidationError(
                gettext("This paging link is broken; start again from the first page.")
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
            self.add_error("until", gettext("Must be later than “From”."))
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
