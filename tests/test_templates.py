"""Message templates: the pages, search, and {variables} in the send form."""

from __future__ import annotations

import pytest
from django.urls import reverse

from messaging.models import MessageTemplate
from messaging.variables import extract_variables, fill
from tests.conftest import client_for
from tests.factories import make_app

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def make_template(**fields) -> MessageTemplate:
    fields.setdefault("name", "Welcome")
    fields.setdefault("kind", "text")
    fields.setdefault(
        "fields", {"sender": "host", "text": "Welcome to {host_name}'s room!"}
    )
    return MessageTemplate.objects.create(**fields)


# --- variables --------------------------------------------------------------------


def test_it_extracts_variables_in_order_without_repeats():
    assert extract_variables("Hi {name}, {gift} from {name}", "{room}") == [
        "name",
        "gift",
        "room",
    ]


def test_it_keeps_json_braces_and_escaped_variables_literal():
    text = '{"host": "{host_name}", "n": {"a": 1}} {{host_name}}'
    assert extract_variables(text) == ["host_name"]
    assert (
        fill(text, {"host_name": "Ana"}) == '{"host": "Ana", "n": {"a": 1}} {host_name}'
    )


def test_it_fills_values_that_contain_braces_as_typed():
    assert fill("{a}-{b}", {"a": "{b}", "b": "x"}) == "{b}-x"


# --- list and search ----------------------------------------------------------------


def test_it_lists_templates_for_a_manager(manager):
    app = make_app(name="Main app")
    make_template(name="Welcome", app=app)
    make_template(
        name="Gift", kind="custom", fields={"business_id": "gift", "data": "{n}"}
    )
    response = client_for(manager).get(reverse("messaging:template-list"))
    assert response.status_code == 200
    body = response.content.decode()
    assert (
        "Welcome" in body
        and "Gift" in body
        and "Main app" in body
        and "All apps" in body
    )
    assert "{host_name}" in body


def test_it_searches_names_and_message_text(manager):
    make_template(name="Welcome")
    make_template(
        name="Gift", kind="custom", fields={"business_id": "gift", "data": "rocket"}
    )
    client = client_for(manager)
    by_name = client.get(reverse("messaging:template-list"), {"q": "gif"})
    assert "Gift" in by_name.content.decode()
    assert "Welcome" not in by_name.content.decode()
    by_text = client.get(reverse("messaging:template-list"), {"q": "ROCKET"})
    assert "Gift" in by_text.content.decode()
    assert "Welcome" not in by_text.content.decode()


def test_it_answers_htmx_search_with_the_table_only(manager):
    make_template(name="Welcome")
    response = client_for(manager).get(
        reverse("messaging:template-list"), {"q": "nothing-matches"}, **HTMX
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div class="card flush" id="template-table">')
    assert "<html" not in body
    assert "No template matches “nothing-matches”." in body
    assert "HX-Request" in response["Vary"]


def test_it_forbids_the_template_list_to_other_roles(moderator, auditor):
    for user in (moderator, auditor):
        assert (
            client_for(user).get(reverse("messaging:template-list")).status_code == 403
        )


def test_it_sends_anonymous_users_to_login(client):
    response = client.get(reverse("messaging:template-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# --- create, edit, delete ---------------------------------------------------------


def test_it_creates_a_template_with_variables(manager):
    app = make_app()
    response = client_for(manager).post(
        reverse("messaging:template-create"),
        {
            "name": "Gift thanks",
            "app": app.pk,
            "kind": "custom",
            "sender": "",
            "business_id": "thanks",
            "data": '{"to": "{viewer}", "gift": "{gift}"}',
        },
    )
    assert response.status_code == 302
    template = MessageTemplate.objects.get(name="Gift thanks")
    assert template.app == app
    assert template.created_by == manager
    assert template.fields == {
        "sender": "",
        "business_id": "thanks",
        "data": '{"to": "{viewer}", "gift": "{gift}"}',
    }
    assert template.variables == ["viewer", "gift"]


def test_it_shows_the_fields_of_the_chosen_kind(manager):
    client = client_for(manager)
    response = client.get(
        reverse("messaging:template-create"),
        {"kind": "command", "name": "typed"},
        **HTMX,
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="template-fields">')
    assert 'name="content"' in body and 'name="from_user"' in body
    assert 'name="text"' not in body
    assert 'value="typed"' in body


def test_it_keeps_typed_values_when_the_template_is_invalid(manager):
    zego = make_app(provider="zego", name="Zego app")
    response = client_for(manager).post(
        reverse("messaging:template-create"),
        {"name": "Wrong kind", "app": zego.pk, "kind": "text", "text": "Hello {who}"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Zego app is a ZEGO app: pick custom command (zego)." in body
    assert 'value="Wrong kind"' in body
    assert "Hello {who}</textarea>" in body
    assert not MessageTemplate.objects.exists()


def test_it_refuses_a_template_without_any_message_text(manager):
    response = client_for(manager).post(
        reverse("messaging:template-create"), {"name": "Empty", "kind": "text"}
    )
    assert response.status_code == 200
    assert "Fill in at least one message field" in response.content.decode()


def test_it_edits_a_template(manager):
    template = make_template()
    client = client_for(manager)
    page = client.get(reverse("messaging:template-edit", args=[template.pk]))
    assert "Welcome to {host_name}&#x27;s room!</textarea>" in page.content.decode()
    response = client.post(
        reverse("messaging:template-edit", args=[template.pk]),
        {"name": "Welcome 2", "kind": "text", "sender": "host", "text": "Hi {viewer}"},
    )
    assert response.status_code == 302
    template.refresh_from_db()
    assert template.name == "Welcome 2"
    assert template.fields == {
        "sender": "host",
        "text": "Hi {viewer}",
        "extension_info": "",
    }


def test_it_deletes_a_template_after_confirming(manager):
    template = make_template()
    client = client_for(manager)
    confirm = client.get(reverse("messaging:template-delete", args=[template.pk]))
    assert "Delete template “Welcome”?" in confirm.content.decode()
    assert MessageTemplate.objects.filter(pk=template.pk).exists()
    response = client.post(reverse("messaging:template-delete", args=[template.pk]))
    assert response.status_code == 302
    assert not MessageTemplate.objects.filter(pk=template.pk).exists()


def test_it_forbids_editing_templates_to_other_roles(auditor, moderator):
    template = make_template()
    for user in (auditor, moderator):
        client = client_for(user)
        assert (
            client.post(
                reverse("messaging:template-edit", args=[template.pk]),
                {"name": "x", "kind": "text", "text": "y"},
            ).status_code
            == 403
        )
        assert (
            client.post(
                reverse("messaging:template-delete", args=[template.pk])
            ).status_code
            == 403
        )
    template.refresh_from_db()
    assert template.name == "Welcome"


# --- templates in the send form -----------------------------------------------------


def test_it_fills_the_send_form_from_a_template_and_asks_for_its_variables(manager):
    app = make_app()
    template = make_template(app=app)
    response = client_for(manager).get(
        reverse("messaging:send"),
        {"app": app.pk, "kind": "text", "template": template.pk},
    )
    body = response.content.decode()
    assert "Welcome to {host_name}&#x27;s room!</textarea>" in body
    assert 'name="var_host_name"' in body
    assert "Replaces {host_name} in the message." in body


def test_it_offers_only_templates_of_the_app_and_kind(manager):
    app, other = make_app(), make_app()
    make_template(name="Mine", app=app)
    make_template(name="Everyone", app=None)
    make_template(name="Other app", app=other)
    make_template(
        name="Custom one", kind="custom", fields={"business_id": "b", "data": "d"}
    )
    response = client_for(manager).get(
        reverse("messaging:send"), {"app": app.pk, "kind": "text"}
    )
    options = response.context["form"].fields["template"].queryset
    assert sorted(t.name for t in options) == ["Everyone", "Mine"]


def test_it_previews_the_filled_template(manager):
    app = make_app()
    response = client_for(manager).post(
        reverse("messaging:send"),
        {
            "app": app.pk,
            "kind": "text",
            "rooms": "room-1",
            "sender": "host",
            "text": "Welcome to {host_name}'s room! {{host_name}}",
            "var_host_name": "Ana",
        },
    )
    assert response.status_code == 200
    assert response.context["step"] == "preview"
    assert response.context["plan"].body == {
        "RoomId": "room-1",
        "Sender_Account": "host",
        "TextContent": "Welcome to Ana's room! {host_name}",
    }


def test_it_shows_a_missing_variable_next_to_its_input(manager):
    app = make_app()
    response = client_for(manager).post(
        reverse("messaging:send"),
        {
            "app": app.pk,
            "kind": "custom",
            "rooms": "room-1",
            "business_id": "gift",
            "data": '{"gift": "{gift}", "to": "{viewer}"}',
            "var_gift": "rose",
            "var_viewer": "",
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert response.context["step"] == "form"
    assert form.errors == {"var_viewer": ["Enter a value for {viewer}."]}
    body = response.content.decode()
    assert 'name="var_gift" value="rose"' in body
    assert (
        "{&quot;gift&quot;: &quot;{gift}&quot;, &quot;to&quot;: &quot;{viewer}&quot;}</textarea>"
        in body
    )


def test_it_refuses_a_text_template_without_text_and_keeps_the_typed_values(manager):
    response = client_for(manager).post(
        reverse("messaging:template-create"),
        {
            "name": "No text",
            "app": "",
            "kind": "text",
            "sender": "host-1",
            "text": "  ",
        },
    )
    assert response.status_code == 200
    assert response.context["form"].errors["text"] == ["A template needs the text."]
    assert 'value="host-1"' in response.content.decode()
    assert not MessageTemplate.objects.filter(name="No text").exists()


def test_it_never_offers_the_credential_check_as_a_template_kind(manager):
    body = (
        client_for(manager).get(reverse("messaging:template-create")).content.decode()
    )
    assert 'value="check"' not in body
