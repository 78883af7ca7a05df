from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import BaseUserCreationForm
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from liveadmin.roles import Role

ROLE_CHOICES = [(role.name, capfirst(role.label)) for role in Role]


class RolesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("choices", ROLE_CHOICES)
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text", _("Administrators must also set up a second factor.")
        )
        super().__init__(**kwargs)

    def clean(self, value: Any) -> list[Role]:
        return [Role[name] for name in super().clean(value)]


class UserCreateForm(BaseUserCreationForm):
    roles = RolesField(label=_("Roles"))

    class Meta(BaseUserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")


class UserEditForm(forms.Form):
    email = forms.EmailField(label=_("Email"), required=False)
    roles = RolesField(label=_("Roles"))
    active = forms.BooleanField(
        required=False,
        label=_("Active (may sign in)"),
        help_text=_("A deactivated user cannot sign in; their sends stay in the log."),
    )
