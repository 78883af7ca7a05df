"""Forty-seven spellings of a blocked word, every one a hostile sender has used (issue 9):
all must be caught through the real webhook, by default folding (leetspeak by an entry
marked leet); an entry marked exact opts out of accent and look-alike folding only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.factories import make_app
from tests.webhook_support import post_webhook, text_body, webhook_url
from webhooks import services

pytestmark = pytest.mark.django_db


def text(value: str) -> dict[str, Any]:
    return text_body(value)


def elements(
    *items: tuple[str, dict[str, Any]], ccd: str | None = None
) -> dict[str, Any]:
    return text_body(
        elements=[{"MsgType": t, "MsgContent": c} for t, c in items],
        cloud_custom_data=ccd,
    )


def custom(data: str) -> dict[str, Any]:
    return elements(("TIMCustomElem", {"Data": data}))


# (id, body, needs an entry marked leet)
SPELLINGS: list[tuple[str, dict[str, Any], bool]] = [
    # --- caught before issue 9 -------------------------------------------------------------
    ("upper-case", text("CASINO tonight"), False),
    ("mixed-case", text("CaSiNo tonight"), False),
    ("full-width", text("ｃａｓｉｎｏ"), False),
    ("full-width-upper", text("ＣＡＳＩＮＯ"), False),
    ("zero-width-space", text("ca\u200bsino"), False),
    ("zero-width-joiner", text("cas\u200dino"), False),
    ("word-joiner", text("c\u2060asino"), False),
    ("soft-hyphen", text("casi\u00adno"), False),
    ("byte-order-mark", text("ca\ufeffsino"), False),
    ("tag-character", text("cas\U000e0041ino"), False),
    ("variation-selector", text("casi\ufe0fno"), False),
    ("hangul-filler", text("cas\u3164ino"), False),
    ("spaces", text("c a s i n o"), False),
    ("dots", text("c.a.s.i.n.o"), False),
    ("dashes", text("c-a-s-i-n-o"), False),
    ("underscores", text("c_a_s_i_n_o"), False),
    ("math-bold", text("𝐜𝐚𝐬𝐢𝐧𝐨"), False),
    ("math-italic", text("𝑐𝑎𝑠𝑖𝑛𝑜"), False),
    ("double-struck", text("𝕔𝕒𝕤𝕚𝕟𝕠"), False),
    ("circled", text("ⓒⓐⓢⓘⓝⓞ"), False),
    ("parenthesized", text("⒞⒜⒮⒤⒩⒪"), False),
    ("zero-width-and-full-width", text("ｃ\u200bａｓｉｎｏ"), False),
    ("custom-data", custom("casino"), False),
    (
        "nested-custom-json",
        custom(json.dumps({"BusinessId": "x", "Data": json.dumps({"k": "casino"})})),
        False,
    ),
    ("json-escape", custom('{"BusinessId":"x","Data":"\\u0063asino"}'), False),
    (
        "custom-desc",
        elements(("TIMCustomElem", {"Data": "{}", "Desc": "casino"})),
        False,
    ),
    ("cloud-custom-data", text_body("hi", cloud_custom_data="casino"), False),
    (
        "extension-info-json",
        text_body("hi", cloud_custom_data='{"ExtensionInfo":"casino"}'),
        False,
    ),
    # --- got through before issue 9 ----------------------------------------------------------
    ("cyrillic-look-alikes", text("саѕіпо"), False),
    ("greek-look-alikes", text("cαsιnο"), False),
    ("mixed-scripts", text("cаsinо"), False),
    ("small-capitals", text("ᴄᴀꜱɪɴᴏ"), False),
    ("dotless-i", text("casıno"), False),
    ("leet-digits", text("c4s1n0"), True),
    ("leet-symbols", text("c@$1n0"), True),
    ("leet-one-digit", text("ca5ino"), True),
    ("accents", text("çásíñó"), False),
    (
        "stacked-marks",
        text("c\u0337\u0322a\u0338\u0301s\u0335i\u0336n\u0334o\u0337"),
        False,
    ),
    ("rtl-override", text("\u202eonisac\u202c"), False),
    ("rtl-override-in-a-sentence", text("play \u202eonisac\u202c now"), False),
    (
        "split-over-two-texts",
        elements(("TIMTextElem", {"Text": "cas"}), ("TIMTextElem", {"Text": "ino"})),
        False,
    ),
    (
        "split-text-and-cloud-data",
        elements(("TIMTextElem", {"Text": "casi"}), ccd="no"),
        False,
    ),
    ("key-of-custom-json", custom('{"casino": 1}'), False),
    (
        "other-element-type",
        elements(("TIMFileElem", {"FileName": "casino.pdf", "FileSize": 1})),
        False,
    ),
    ("lower-case-msgtype", elements(("timtextelem", {"Text": "casino"})), False),
    ("html-entity", text("&#99;asino"), False),
    ("percent-escape", text("%63%61sino"), False),
]


def test_there_are_forty_seven_spellings():
    assert len(SPELLINGS) == 47
    assert len({name for name, _, _ in SPELLINGS}) == 47


@pytest.mark.parametrize("name, body, leet", SPELLINGS, ids=[s[0] for s in SPELLINGS])
def test_every_spelling_is_caught(name, body, leet):
    app = make_app()
    shared = services.create_list("Shared", app=None)
    services.add_entry(shared, term="casino", leet=leet)
    response = post_webhook(Client(), webhook_url(app), body)
    assert response.status_code == 200
    assert response.json() == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 1}, (
        name
    )


@pytest.mark.parametrize(
    "spelling",
    ["саѕіпо", "ᴄᴀꜱɪɴᴏ", "çásíñó", "casıno"],
    ids=["cyrillic", "small-caps", "accents", "dotless"],
)
def test_an_exact_entry_does_not_fold_look_alikes_or_accents(spelling):
    app = make_app()
    shared = services.create_list("Shared", app=None)
    services.add_entry(shared, term="casino", exact=True)
    client = Client()
    assert (
        post_webhook(client, webhook_url(app), text(spelling)).json()["ErrorCode"] == 0
    )
    # Case, width and invisible characters still fold for an exact entry.
    assert (
        post_webhook(client, webhook_url(app), text("ＣＡ\u200bSINO")).json()[
            "ErrorCode"
        ]
        == 1
    )


def test_leet_folding_is_only_for_entries_marked_leet():
    app = make_app()
    shared = services.create_list("Shared", app=None)
    services.add_entry(shared, term="casino")
    response = post_webhook(Client(), webhook_url(app), text("c4s1n0"))
    assert response.json()["ErrorCode"] == 0


def test_a_masked_split_word_is_masked_in_both_fields():
    app = make_app()
    shared = services.create_list("Shared", app=None)
    services.add_entry(shared, term="casino", action="mask")
    body = elements(
        ("TIMTextElem", {"Text": "go cas"}), ("TIMTextElem", {"Text": "ino now"})
    )
    answer = post_webhook(Client(), webhook_url(app), body).json()
    assert [e["MsgContent"]["Text"] for e in answer["MsgBody"]] == ["go ***", "*** now"]


def test_a_masked_look_alike_and_entity_are_masked_where_they_stand():
    app = make_app()
    shared = services.create_list("Shared", app=None)
    services.add_entry(shared, term="casino", action="mask")
    answer = post_webhook(
        Client(), webhook_url(app), text("a саѕіпо and &#99;asino!")
    ).json()
    assert answer["MsgBody"][0]["MsgContent"]["Text"] == "a ****** and **********!"


def test_the_try_page_shows_the_folded_text_and_which_entry_matched_where(db):
    from django.urls import reverse

    from liveadmin.roles import Role
    from tests.conftest import client_for
    from tests.factories import make_user

    app = make_app(name="try-app")
    shared = services.create_list("Shared", app=None)
    services.add_entry(shared, term="casino")
    moderator = make_user("mod-try", role=Role.MODERATOR)
    response = client_for(moderator).post(
        reverse("webhooks:try"),
        {"app": app.pk, "sender": "bob", "text": "best саѕіпо here"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    # The folded reading of the Cyrillic look-alikes ...
    assert '<span class="mono" data-reading="folded">best casino here</span>' in html
    # ... and the entry, the field and the characters it matched.
    assert (
        '<td class="mono">MsgBody[0].Text</td><td class="mono">саѕіпо</td>'
        '<td class="small muted">5–11</td>'
    ) in html
    assert '<td class="mono">casino</td>' in html
