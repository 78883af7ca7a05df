"""Every page carries a Content-Security-Policy (django-csp) that allows scripts from
the site only, and no page holds an inline script or event handler."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from liveadmin.navigation import NAV
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def test_the_policy_allows_scripts_from_the_site_only(client):
    response = client.get(reverse("login"))
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"


def test_no_page_holds_an_inline_script(users):
    pages = {reverse("login"), reverse("home")}
    pages |= {
        reverse(item.url_name) for item in NAV if not item.url_name.startswith("admin:")
    }
    checked = 0
    for user in users.values():
        client = client_for(user)
        for url in sorted(pages):
            response = client.get(url)
            if response.status_code != 200:
                continue
            body = response.content.decode()
            assert "Content-Security-Policy" in response.headers, url
            assert not INLINE_SCRIPT.search(body), (url, INLINE_SCRIPT.search(body))
            assert not INLINE_HANDLER.search(body), (url, INLINE_HANDLER.search(body))
            checked += 1
    assert checked >= len(pages)
