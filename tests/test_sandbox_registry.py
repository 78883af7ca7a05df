"""The sandbox's provider registry (messaging/sandbox/registry.py): it lists the same
providers as the client registry, the sandbox's endpoints, choices and index page are
derived from it, and a new provider takes only its sandbox module and its line there."""

from __future__ import annotations

import importlib
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import clear_url_caches, resolve, reverse

from messaging import providers
from messaging.sandbox import registry
from messaging.sandbox.models import SandboxApp
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_the_sandbox_stands_in_for_every_client_provider():
    assert list(registry.SANDBOX_PROVIDERS) == list(providers.PROVIDERS)
    for name in providers.PROVIDERS:
        assert registry.sandbox_provider(name).LABEL == providers.provider(name).LABEL
    # Independent implementations: the sandbox modules are not the clients'.
    assert set(registry.SANDBOX_PROVIDERS.values()).isdisjoint(
        providers.PROVIDERS.values()
    )


@pytest.mark.parametrize("name", list(registry.SANDBOX_PROVIDERS))
def test_each_endpoint_is_served_by_its_sandbox_module(name):
    module = registry.sandbox_provider(name)
    assert module.ENDPOINTS
    for endpoint in module.ENDPOINTS:
        _, _, tail = endpoint.partition(" ")
        base = f"/sandbox/{module.BASE_PATH}".rstrip("/")
        match = resolve(f"{base}{tail}".split("?")[0])
        assert match.namespace == "sandbox"
        assert match.func.__module__ == registry.SANDBOX_PROVIDERS[name]


def test_the_sandbox_urls_are_the_registrys_patterns_plus_the_pages():
    from messaging.sandbox import urls

    provider_patterns = [
        (str(p.pattern), p.callback)
        for p in urls.urlpatterns
        if p.callback.__module__ != "messaging.sandbox.views"
    ]
    assert provider_patterns == [
        (str(p.pattern), p.callback) for p in registry.urlpatterns()
    ]
    assert {"messaging.sandbox.tencent", "messaging.sandbox.zego"} == {
        callback.__module__ for _, callback in provider_patterns
    }


def test_the_app_choices_are_the_registrys():
    field = SandboxApp._meta.get_field("provider")
    assert list(field.choices) == registry.provider_choices()
    assert [name for name, _ in field.choices] == ["tencent", "zego"]


@pytest.fixture
def third_provider(monkeypatch):
    """Register tests/sandbox_third_provider.py as it would be registered for real: one
    line in SANDBOX_PROVIDERS; the URL modules are read again, as at start-up."""
    import liveadmin.urls
    import messaging.sandbox.urls

    def reload_urls():
        importlib.reload(messaging.sandbox.urls)
        importlib.reload(liveadmin.urls)
        clear_url_caches()

    monkeypatch.setitem(
        registry.SANDBOX_PROVIDERS, "third", "tests.sandbox_third_provider"
    )
    reload_urls()
    yield
    monkeypatch.undo()
    reload_urls()


def test_a_new_sandbox_provider_needs_only_its_module_and_registry_line(
    third_provider, moderator
):
    client = client_for(moderator)
    response = client.post("/sandbox/third/send")
    assert response.json() == {"ok": True, "answered_by": "Third (test)"}
    assert reverse("sandbox:third-api") == "/sandbox/third/send"

    page = client.get("/sandbox/").content.decode()
    assert "POST http://testserver/sandbox/third/send" in page
    assert "http://testserver/sandbox/v4/live_engine_http_srv/send_text_msg" in page

    # The model accepts it, and no migration is due.
    app = SandboxApp(provider="third", app_id=1, secret="s")
    app.full_clean(validate_unique=False)
    call_command(
        "makemigrations", "sandbox", "--check", "--dry-run", stdout=io.StringIO()
    )


def test_an_unregistered_provider_is_refused():
    with pytest.raises(ValidationError):
        SandboxApp(provider="third", app_id=1, secret="s").full_clean(
            validate_unique=False
        )
    with pytest.raises(KeyError):
        registry.sandbox_provider("third")
