"""Error pages inside the layout, the sandbox index and the favicon."""

from __future__ import annotations

import pytest

from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_it_shows_a_404_inside_the_layout(manager):
    response = client_for(manager).get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    assert 'aria-label="Main"' in html and "Log out" in html


def test_it_shows_a_403_inside_the_layout_with_navigation(manager):
    response = client_for(manager).get("/users/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "Not allowed" in html and 'href="/send/"' in html


def test_it_shows_the_sandbox_index(moderator, client):
    response = client_for(moderator).get("/sandbox/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "http://testserver/sandbox/v4/live_engine_http_srv/send_text_msg" in html
    assert 'href="/sandbox/rooms/"' in html
    assert client.get("/sandbox/").status_code == 302


def test_it_serves_a_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("favicon.svg")
    icon = client.get(response["Location"])
    assert icon.status_code == 200
    assert b"<svg" in b"".join(icon.streaming_content)
    icon.close()


def test_tencent_only_pages_offer_enabled_tencent_apps_only(moderator):
    from tests.factories import make_app

    make_app(name="tencent-on")
    make_app(name="tencent-off", enabled=False)
    make_app(name="zego-on", provider="zego")
    client = client_for(moderator)
    for path in ("/moderation/try/", "/moderation/decisions/"):
        html = client.get(path).content.decode()
        assert "tencent-on" in html, path
        assert "tencent-off" not in html and "zego-on" not in html, path
    html = client.get("/blocklists/").content.decode()
    assert "zego-on" not in html and "tencent-on" in html
