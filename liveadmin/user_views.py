"""User management for administrators: list, create, roles, deactivate, password."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from liveadmin import users
from liveadmin.forms import UserCreateForm, UserEditForm
from liveadmin.http import AuthedHtmxRequest
from liveadmin.roles import Role, role_required


def _get_user(pk: int) -> User:
    return get_object_or_404(get_user_model(), pk=pk)


@role_required(Role.ADMIN)
def user_list(request: AuthedHtmxRequest) -> HttpResponse:
    everyone = list(
        get_user_model()
        .objects.order_by("-is_active", "username")
        .prefetch_related("groups")
    )
    rows = [(u, users.held_roles(u)) for u in everyone]
    return render(request, "liveadmin/user_list.html", {"rows": rows})


@role_required(Role.ADMIN)
def user_create(request: AuthedHtmxRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = users.create_user(
            form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            roles=form.cleaned_data["roles"],
            actor=request.user,
        )
        messages.success(
            request, _("User %(username)s created.") % {"username": user.username}
        )
        return redirect("user-list")
    return render(request, "liveadmin/user_form.html", {"form": form, "creating": True})


@role_required(Role.ADMIN)
def user_edit(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    user = _get_user(pk)
    initial = {
        "email": user.email,
        "roles": [r.name for r in users.held_roles(user)],
        "active": user.is_active,
    }
    form = UserEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            users.update_user(
                user,
                email=form.cleaned_data["email"],
                roles=form.cleaned_data["roles"],
                active=form.cleaned_data["active"],
                actor=request.user,
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(
                request, _("User %(username)s saved.") % {"username": user.username}
            )
            return redirect("user-list")
    return render(request, "liveadmin/user_form.html", {"form": form, "subject": user})


@role_required(Role.ADMIN)
def user_password(request: AuthedHtmxRequest, pk: int) -> HttpResponse:
    user = _get_user(pk)
    form = SetPasswordForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        users.reset_password(
            user, form.cleaned_data["new_password1"], actor=request.user
        )
        messages.success(
            request,
            _("Password of %(username)s reset.") % {"username": user.username},
        )
        return redirect("user-list")
    return render(
        request, "liveadmin/user_password.html", {"form": form, "subject": user}
    )
