from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from messaging.models import ProviderApp
from tests.conftest import client_for
from tests.factories import make_app

pytestmark = pytest.mark.django_db

VALID = {
    "name": "Main app",
    "provider": "tencent",
    "app_id": "1400123456",
    "region": "singapore",
    "identifier": "administrator",
    "secret_key": "s3cret-key-value-plaintext",
    "webhook_token": "hook-token-plaintext",
    "base_url": "",
    "rate_limit": "",
}


def test_it_creates_an_app(admin_user):
    response = client_for(admin_user).post(reverse("messaging:app-create"), VALID)
    assert response.status_code == 302
    app = ProviderApp.objects.get(name="Main app")
    assert (app.provider, app.app_id, app.region, app.identifier) == (
        "tencent",
        1400123456,
        "singapore",
        "administrator",
    )
    assert app.secret_key == "s3cret-key-value-plaintext"
    assert app.webhook_token == "hook-token-plaintext"
    assert app.api_base_url == "https://adminapisgp.im.qcloud.com"
    assert app.enabled


def test_it_maps_each_tencent_region_to_its_domain():
    app = make_app(region="china")
    assert app.api_base_url == "https://console.tim.qq.com"
    app.region = "silicon-valley"
    assert app.api_base_url == "https://adminapiusa.im.qcloud.com"
    app.base_url = "http://127.0.0.1:9000/sandbox/"
    assert app.api_base_url == "http://127.0.0.1:9000/sandbox"


def test_it_keeps_typed_values_on_bad_input(admin_user):
    data = {
        **VALID,
        "app_id": "14001x",
        "identifier": "  ",
        "base_url": "ftp://example.com",
    }
    response = client_for(admin_user).post(reverse("messaging:app-create"), data)
    assert response.status_code == 200
    body = response.content.decode()
    assert "The SDKAppID must be a number" in body
    assert (
        "The admin identifier cannot be empty" in body
        or "This field is required" in body
    )
    assert "must start with http:// or https://" in body or "Enter a valid URL" in body
    assert 'value="Main app"' in body
    assert 'value="14001x"' in body
    # The typed secret is never echoed back, even on an error.
    assert "s3cret-key-value-plaintext" not in body
    assert not ProviderApp.objects.exists()


def test_it_refuses_a_region_of_the_other_provider(admin_user):
    response = client_for(admin_user).post(
        reverse("messaging:app-create"), {**VALID, "region": "sgp"}
    )
    assert response.status_code == 200
    assert (
        "Pick a Tencent Cloud (TUILiveKit / Chat) region" in response.content.decode()
    )


def test_it_never_renders_secrets_on_edit(admin_user):
    app = make_app(secret_key="very-secret-value", webhook_token="very-secret-token")
    body = (
        client_for(admin_user)
        .get(reverse("messaging:app-edit", args=[app.pk]))
        .content.decode()
    )
    assert "very-secret-value" not in body
    assert "very-secret-token" not in body
    list_body = (
        client_for(admin_user).get(reverse("messaging:app-list")).content.decode()
    )
    assert "very-secret" not in list_body


def test_it_keeps_secrets_when_edit_leaves_them_empty(admin_user):
    app = make_app(secret_key="keep-me", webhook_token="keep-token")
    data = {
        **VALID,
        "name": app.name,
        "app_id": str(app.app_id),
        "secret_key": "",
        "webhook_token": "",
    }
    response = client_for(admin_user).post(
        reverse("messaging:app-edit", args=[app.pk]), data
    )
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.secret_key == "keep-me"
    assert app.webhook_token == "keep-token"


def test_it_replaces_and_clears_secrets(admin_user):
    app = make_app(secret_key="old-key", webhook_token="old-token")
    data = {
        **VALID,
        "name": app.name,
        "app_id": str(app.app_id),
        "secret_key": "new-key",
        "webhook_token": "",
        "clear_webhook_token": "on",
    }
    client_for(admin_user).post(reverse("messaging:app-edit", args=[app.pk]), data)
    app.refresh_from_db()
    assert app.secret_key == "new-key"
    assert app.webhook_token == ""


def test_it_disables_and_enables_an_app(admin_user):
    app = make_app()
    client = client_for(admin_user)
    client.post(reverse("messaging:app-toggle", args=[app.pk]))
    app.refresh_from_db()
    assert not app.enabled
    client.post(reverse("messaging:app-toggle", args=[app.pk]))
    app.refresh_from_db()
    assert app.enabled


def test_it_stores_secrets_encrypted():
    app = make_app(
        secret_key="plaintext-secret-key", webhook_token="plaintext-webhook-token"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret_key, webhook_token FROM messaging_providerapp WHERE id = %s",
            [app.pk],
        )
        raw_key, raw_token = cursor.fetchone()
    assert "plaintext-secret-key" not in raw_key
    assert "plaintext-webhook-token" not in raw_token
    assert raw_key.startswith("gAAAA")  # a Fernet token
    assert ProviderApp.objects.get(pk=app.pk).secret_key == "plaintext-secret-key"


def test_it_decrypts_with_a_rotated_key_list(settings):
    from cryptography.fernet import Fernet

    app = make_app(secret_key="rotate-me")
    old = settings.LIVEADMIN_ENCRYPTION_KEY
    settings.LIVEADMIN_ENCRYPTION_KEY = f"{Fernet.generate_key().decode()},{old}"
    assert ProviderApp.objects.get(pk=app.pk).secret_key == "rotate-me"


def test_it_offers_the_regions_of_the_chosen_provider_only(admin_user):
    client = client_for(admin_user)
    zego = make_app(provider="zego", name="z")
    body = client.get(reverse("messaging:app-edit", args=[zego.pk])).content.decode()
    region_select = body[
        body.index('name="region"') : body.index(
            "</select>", body.index('name="region"')
        )
    ]
    assert 'value="sgp"' in region_select and 'value="singapore"' not in region_select
    posted = client.post(
        reverse("messaging:app-create"), {**VALID, "app_id": "x"}
    ).content.decode()
    region_select = posted[
        posted.index('name="region"') : posted.index(
            "</select>", posted.index('name="region"')
        )
    ]
    assert 'value="singapore"' in region_select and 'value="sgp"' not in region_select


def test_it_says_when_typed_secrets_had_to_be_emptied(admin_user):
    response = client_for(admin_user).post(
        reverse("messaging:app-create"),
        {**VALID, "app_id": "not-a-number", "webhook_token": "typed-token"},
    )
    body = response.content.decode()
    assert "secret key and webhook token you typed are not sent back" in body.lower()
    assert "typed-token" not in body and VALID["secret_key"] not in body


def test_it_gives_a_new_app_the_right_token_help(admin_user):
    body = client_for(admin_user).get(reverse("messaging:app-create")).content.decode()
    assert "Leave empty to keep the current token" not in body
    assert "verify the provider&#x27;s Sign on webhook calls." in body
