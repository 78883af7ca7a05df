"""The compiled blocklist matcher (webhooks/matching.py): pure Python, no database needed."""

from __future__ import annotations

import copy
import json
import time

import pytest

from webhooks.matching import (
    Hit,
    NormText,
    Rule,
    RuleSet,
    Verdict,
    compile_regex_or_error,
    normalise,
    required_literal,
)

NOW = 1_800_000_000.0


def text_body(*texts: str) -> list[dict]:
    return [{"MsgType": "TIMTextElem", "MsgContent": {"Text": t}} for t in texts]


def check(
    rules: list[Rule] | RuleSet,
    *texts: str,
    user: str = "viewer",
    ccd: str | None = None,
    now: float = NOW,
) -> Verdict:
    """The verdict on a message of these texts, by a rule set (compiled here from a list)."""
    ruleset = rules if isinstance(rules, RuleSet) else RuleSet.compile(rules)
    return ruleset.check(
        from_account=user, msg_body=text_body(*texts), cloud_custom_data=ccd, now=now
    )


def word(rule_id: int, term: str, action: str = "forbid", **kw) -> Rule:
    return Rule(id=rule_id, kind="word", term=term, action=action, **kw)


# ------------------------------------------------------------------------------------------------
# Actions and the documented answer
# ------------------------------------------------------------------------------------------------


def test_it_allows_a_clean_message_with_error_code_0():
    verdict = check([word(1, "scam")], "hello everyone")
    assert verdict.action == "allow"
    assert verdict.hits == ()
    assert verdict.response() == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}


def test_it_forbids_with_error_code_1():
    verdict = check([word(1, "scam")], "this is a scam")
    assert (verdict.action, verdict.error_code, verdict.error_info) == ("forbid", 1, "")
    assert verdict.hits == (Hit(1, "word", "forbid", "MsgBody[0].Text", 10, 14),)
    assert verdict.response() == {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 1}


def test_it_forbids_with_the_moderators_code_and_text():
    rule = word(
        1, "scam", "forbid_code", code=10150, info="Links to scams are not allowed"
    )
    verdict = check([rule], "scam here")
    assert (verdict.action, verdict.error_code, verdict.error_info) == (
        "forbid_code",
        10150,
        "Links to scams are not allowed",
    )
    assert verdict.response() == {
        "ActionStatus": "OK",
        "ErrorInfo": "Links to scams are not allowed",
        "ErrorCode": 10150,
    }


def test_it_discards_silently_with_error_code_2():
    verdict = check([word(1, "spam", "discard")], "buy spam")
    assert (verdict.action, verdict.error_code) == ("discard", 2)
    assert verdict.msg_body is None


def test_it_masks_with_error_code_0_and_a_modified_body():
    verdict = check([word(1, "idiot", "mask")], "you idiot!")
    assert (verdict.action, verdict.error_code) == ("mask", 0)
    assert verdict.msg_body == text_body("you *****!")
    assert verdict.cloud_custom_data is None
    assert verdict.response() == {
        "ActionStatus": "OK",
        "ErrorInfo": "",
        "ErrorCode": 0,
        "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "you *****!"}}],
    }


def test_it_skips_rules_with_unknown_kinds_actions_or_codes():
    rules = [
        Rule(1, "phrase", "a", "forbid"),
        Rule(2, "word", "b", "ban"),
        Rule(3, "word", "c", "forbid_code", code=99),
        Rule(4, "word", "d", "forbid_code", code=None),
        Rule(5, "word", " \u200b ", "forbid"),
        Rule(6, "regex", "(", "forbid"),
        Rule(7, "word", "kept", "forbid"),
    ]
    ruleset = RuleSet.compile(rules)
    assert [rule_id for rule_id, _ in ruleset.skipped] == [1, 2, 3, 4, 5, 6]
    assert [r.id for r in ruleset.rules] == [7]


# ------------------------------------------------------------------------------------------------
# Precedence and expiry
# ------------------------------------------------------------------------------------------------


def test_it_lets_forbid_win_over_discard_and_mask_and_records_every_hit():
    rules = [
        word(1, "alpha", "mask"),
        word(2, "beta", "discard"),
        word(3, "gamma", "forbid"),
    ]
    verdict = check(rules, "alpha beta gamma")
    assert verdict.action == "forbid"
    assert [(h.rule_id, h.action) for h in verdict.hits] == [
        (1, "mask"),
        (2, "discard"),
        (3, "forbid"),
    ]


def test_it_lets_discard_win_over_mask():
    verdict = check(
        [word(1, "alpha", "mask"), word(2, "beta", "discard")], "alpha", "beta"
    )
    assert (verdict.action, verdict.error_code, verdict.msg_body) == (
        "discard",
        2,
        None,
    )
    assert {h.field for h in verdict.hits} == {"MsgBody[0].Text", "MsgBody[1].Text"}


def test_it_puts_a_blocked_user_first_among_forbids():
    rules = [
        word(1, "alpha", "forbid_code", code=10101, info="word"),
        Rule(2, "user", "troll", "forbid_code", code=10102, info="user"),
    ]
    verdict = check(rules, "alpha", user="troll")
    assert (verdict.error_code, verdict.error_info) == (10102, "user")
    assert verdict.hits[0] == Hit(2, "user", "forbid_code", "From_Account", 0, 5)
    assert [h.rule_id for h in verdict.hits] == [2, 1]


def test_it_ranks_a_blocked_user_by_the_entrys_action():
    rules = [
        Rule(1, "user", "troll", "discard"),
        word(2, "alpha", "forbid"),
        word(3, "beta", "mask"),
    ]
    assert check(rules, "beta", user="troll").action == "discard"
    verdict = check(rules, "alpha", user="troll")
    assert verdict.action == "forbid"
    assert [h.rule_id for h in verdict.hits] == [1, 2]


def test_it_matches_users_exactly():
    rules = [Rule(1, "user", "Troll", "forbid")]
    assert check(rules, "hi", user="Troll").action == "forbid"
    assert check(rules, "hi", user="troll").action == "allow"
    assert check(rules, "hi", user="Troll2").action == "allow"


def test_it_masks_everything_a_user_with_a_mask_entry_sends():
    rules = [Rule(1, "user", "noisy", "mask")]
    body = [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "hello"}},
        {
            "MsgType": "TIMCustomElem",
            "MsgContent": {"Data": '{"BusinessId":"gift","Data":"rose"}'},
        },
    ]
    verdict = RuleSet.compile(rules).check(
        from_account="noisy", msg_body=body, cloud_custom_data="x1", now=NOW
    )
    assert verdict.action == "mask"
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "*****"
    assert json.loads(verdict.msg_body[1]["MsgContent"]["Data"]) == {
        "BusinessId": "****",
        "Data": "****",
    }
    assert verdict.cloud_custom_data == "**"


def test_it_never_matches_expired_rules():
    rules = [
        word(1, "old", expires_at=NOW - 1),
        word(2, "edge", expires_at=NOW),
        word(3, "fresh", expires_at=NOW + 1),
        Rule(4, "user", "gone", "forbid", expires_at=NOW - 10),
        Rule(5, "regex", r"\d{5}", "forbid", expires_at=NOW - 10),
    ]
    ruleset = RuleSet.compile(rules)

    def action(text: str, user: str = "viewer", now: float = NOW) -> str:
        return ruleset.check(
            from_account=user, msg_body=text_body(text), cloud_custom_data=None, now=now
        ).action

    assert action("old") == "allow"
    assert action("edge") == "allow"
    assert action("fresh") == "forbid"
    assert action("fresh", now=NOW + 1) == "allow"
    assert action("old", now=NOW - 2) == "forbid"
    assert action("hi", user="gone") == "allow"
    assert action("12345") == "allow"


def test_it_exempts_a_hit_covered_by_an_expired_allow_entry_no_longer():
    rules = [word(1, "ass"), Rule(2, "allow", "class", "forbid", expires_at=NOW - 1)]
    assert check(rules, "first class").action == "forbid"


# ------------------------------------------------------------------------------------------------
# Allow-list
# ------------------------------------------------------------------------------------------------


def test_it_exempts_words_covered_by_an_allow_entry():
    rules = [
        word(1, "ass"),
        Rule(2, "allow", "class", "forbid"),
        Rule(3, "allow", "passport", "forbid"),
    ]
    verdict = check(rules, "first class passport")
    assert verdict.action == "allow"
    assert [(h.rule_id, h.action, h.start, h.end) for h in verdict.hits] == [
        (2, "allow", 6, 11),
        (3, "allow", 12, 20),
    ]
    assert check(rules, "first class ass").action == "forbid"
    assert check(rules, "sassy").action == "forbid"


def test_it_exempts_wildcard_and_regex_hits_too():
    rules = [
        Rule(1, "wildcard", "*cat*", "forbid"),
        Rule(2, "regex", r"\d{3}", "forbid"),
        Rule(3, "allow", "education", "forbid"),
        Rule(4, "allow", "room 101", "forbid"),
    ]
    assert check(rules, "good education").action == "allow"
    assert check(rules, "meet in room 101").action == "allow"
    assert check(rules, "call 555").action == "forbid"


def test_it_only_exempts_hits_inside_the_allowed_span():
    rules = [word(1, "scunthorpe united"), Rule(2, "allow", "scunthorpe", "forbid")]
    assert check(rules, "scunthorpe united").action == "forbid"


# ------------------------------------------------------------------------------------------------
# Normalisation and evasion
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "BadWord",  # case
        "ＢＡＤＷＯＲＤ",  # full-width
        "b\ufeffad\u200bwo\u200drd",  # BOM, zero-width space, joiner
        "b\u00ada\u2060d word",  # soft hyphen, word joiner
        "b a d w o r d",  # spaces between letters
        "b.a.d  w-o r d",  # punctuation and double spaces
        "b_a_d-w*o*r*d",
        "ⓑⓐⓓⓦⓞⓡⓓ",  # circled letters (NFKC)
        "𝐛𝐚𝐝 𝐰𝐨𝐫𝐝",  # mathematical bold (NFKC)
        "b\u0337a\u0337d\u0337 w\u0336o\u0336r\u0336d",  # stacked diacritics
        "bad\ufe0f word",  # variation selector
    ],
)
def test_it_sees_through_evasion(text):
    verdict = check([word(1, "bad word", "mask")], f"say {text} now")
    assert verdict.action == "mask"
    masked = verdict.msg_body[0]["MsgContent"]["Text"]
    assert masked.startswith("say ") and masked.endswith(" now")
    assert set(masked[4:-4]) == {"*"}
    assert len(masked) == len(text) + 8


def test_it_normalises_listed_terms_the_same_way():
    assert normalise("Ｂａｄ  Ｗｏｒｄ!") == "badword"
    assert check([word(1, "Ｂａｄ Ｗｏｒｄ")], "bad word").action == "forbid"
    assert check([word(1, "STRASSE")], "straße").action == "forbid"


def test_it_keeps_composed_accents_distinct_for_an_exact_entry():
    exact = Rule(1, "word", "bad", "forbid", exact=True)
    assert (
        check(
            [Rule(1, "word", "café", "forbid", exact=True)], "cafe\u0301 au lait"
        ).action
        == "forbid"
    )  # e + combining acute = é
    assert check([exact], "bád").action == "allow"
    # Folding (the default) reads both as the same word.
    assert check([word(1, "bad")], "bád").action == "forbid"


def test_it_does_not_glue_unrelated_words_together():
    rules = [word(1, "ass"), word(2, "bad word")]
    assert check(rules, "it was sent").action == "allow"
    assert check(rules, "as soon as possible").action == "allow"
    assert check(rules, "you a s s").action == "forbid"
    assert (
        check(rules, "glass").action == "forbid"
    )  # substring model: the allow-list handles "glass"
    assert (
        check(rules, "a bad wordplay").action == "forbid"
    )  # the phrase's own space may be anywhere
    assert check(rules, "abad wo rd").action == "allow"


def test_it_maps_hits_back_to_the_original_characters():
    text = "x ＢＡ\u200bＤ y"
    verdict = check([word(1, "bad", "mask")], text)
    (hit,) = verdict.hits
    assert text[hit.start : hit.end] == "ＢＡ\u200bＤ"
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "x **** y"


def test_it_maps_expansions_and_compositions_back():
    norm = NormText("ﬁne Straße e\u0301")
    assert norm.light == "fine strasse é"
    assert norm.strict == "finestrasseé"
    assert norm.strict_span_to_original(0, 2) == (
        0,
        1,
    )  # "fi" both come from the ligature
    assert norm.strict_span_to_original(8, 10) == (8, 9)  # "ss" from "ß"
    assert norm.strict_span_to_original(11, 12) == (11, 13)  # é from e + U+0301


def test_only_letters_and_numbers_pass_isalnum():
    # The letters-only form takes str.isalnum() as proof that nothing but letters and
    # numbers is left once the spaces are out (webhooks/matching/normalise.py, _strict).
    import unicodedata

    passing = [
        cp
        for cp in range(0x110000)
        if not 0xD800 <= cp < 0xE000
        and chr(cp).isalnum()
        and unicodedata.category(chr(cp))[0] not in "LN"
    ]
    assert passing == []


@pytest.mark.parametrize("seed", range(3))
def test_has_astral_by_size_agrees_with_a_scan(seed):
    # webhooks/matching/charclass.py reads a str's width from its size; any other way of
    # storing strings would make it wrong, and the scan is used instead.
    import random
    import re

    from webhooks.matching import charclass

    assert charclass.has_astral is charclass._has_astral_by_size
    astral = re.compile("[\U00010000-\U0010ffff]")
    alphabet = [
        "a",
        "\xe9",
        "\u4e00",
        "\uffff",
        "\U00010000",
        "\U0001f600",
        "\U0010ffff",
    ]
    rng = random.Random(seed)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        for variant in (
            text,
            text[1:],
            text[:-1],
            json.loads(json.dumps(text)),
            text * 3,
        ):
            assert charclass.has_astral(variant) == (astral.search(variant) is not None)


_MIXED = (
    "ab xyz 大家好 今天 ，。！ 1 2 é e\u0301 ﬁ ß Ａ ᴀ а ο \u200b \u202e \t - _ . "
    "\U0001f600 \U00020000 \u0e01\u0e34 ㄱ\u1161 ｶﾞ ｶ ｈｅｌｌｏ １２ （ ） ？ ： ＡＢ \uf900 ㎏ HeLLo ΣΑΣ Б"
)


@pytest.mark.parametrize("seed", range(3))
def test_the_fast_letters_only_form_is_the_full_one(seed):
    import random
    import unicodedata

    import regex

    pieces = _MIXED.split(" ") + [" ", "  "]
    rng = random.Random(seed)
    non_word = regex.compile(r"[^\p{L}\p{N}\p{M}]+")
    for _ in range(2000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        norm = NormText(text)
        assert norm.strict == non_word.sub("", norm.light), text
        if norm.plain:  # the light form without the slow path is NFKC, case-folded
            assert norm.light == unicodedata.normalize("NFKC", text).casefold(), text
        if norm.plain:  # no direction control or other format character
            assert not regex.search(r"\p{Cf}", text), text


@pytest.mark.parametrize("seed", range(2))
def test_the_one_pass_c_folding_is_the_full_one(seed):
    # _plainfold.c folds plain BMP text in one pass; anywhere in the BMP, what it returns
    # is NFKC, case-folded, and its letters-only form, and it declines only what the
    # Python paths must take (a special character, or one NFKC makes astral).
    import os
    import random
    import sys
    import unicodedata

    normalise = sys.modules["webhooks.matching.normalise"]
    if normalise._plainfold is None:
        # make test builds it, so there this test always runs.
        assert not os.environ.get("LIVEADMIN_EXPECT_COMPILED"), "_plainfold not built"
        pytest.skip("the compiled hot path is not built (make test builds it)")
    tables = normalise._tables()
    rng = random.Random(seed)
    blocks = [(0x20, 0x7E), (0xA0, 0x3000), (0x3000, 0xFFFF)]
    folded = declined = 0
    for _ in range(20_000):
        text = "".join(
            chr(rng.randint(*rng.choice(blocks))) for _ in range(rng.randint(1, 8))
        )
        forms = normalise._plainfold.light_strict(text)
        if forms is None:
            declined += 1
            astral = normalise.has_astral(unicodedata.normalize("NFKC", text))
            assert tables.special.search(text) or astral, ascii(text)
            continue
        folded += 1
        light = unicodedata.normalize("NFKC", text).casefold()
        # Letters, digits and marks by this interpreter's Unicode data, as _strict's
        # BMP class reads them (regex's newer data knows more assigned characters).
        strict = "".join(c for c in light if unicodedata.category(c)[0] in "LNM")
        assert forms == (light, strict), ascii(text)
        assert not tables.special.search(text), ascii(text)
    assert folded > 5_000 and declined > 5_000


def test_it_matches_emoji_and_symbol_only_words_as_they_stand():
    rules = [word(1, "🍆", "mask"), word(2, "卍", "forbid"), word(3, "$$$", "discard")]
    verdict = check(rules, "nice 🍆 lol")
    assert verdict.action == "mask"
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "nice * lol"
    assert check(rules, "a 卍 b").action == "forbid"
    assert check(rules, "win $$$ now").action == "discard"
    assert check(rules, "costs $5").action == "allow"
    # Emoji presentation selectors and skin tones do not hide the emoji.
    assert check([word(1, "👍", "forbid")], "great 👍🏽").action == "forbid"
    assert check([word(1, "❤", "forbid")], "love ❤️").action == "forbid"


def test_it_exempts_symbol_hits_with_symbol_allow_entries():
    rules = [word(1, "$$", "forbid"), Rule(2, "allow", "$$$", "forbid")]
    assert check(rules, "win $$$").action == "allow"
    assert check(rules, "win $$").action == "forbid"


# ------------------------------------------------------------------------------------------------
# Chinese, Japanese, Korean
# ------------------------------------------------------------------------------------------------


def test_it_finds_chinese_words_inside_sentences():
    rules = [word(1, "赌博", "mask"), word(2, "代开发票", "forbid")]
    verdict = check(rules, "欢迎来到直播间，这里没有赌博，大家文明发言。")
    assert verdict.action == "mask"
    assert (
        verdict.msg_body[0]["MsgContent"]["Text"]
        == "欢迎来到直播间，这里没有**，大家文明发言。"
    )
    assert check(rules, "专业代 开-发 票，联系我").action == "forbid"
    assert check(rules, "代\u200b开\u200b发\u200b票").action == "forbid"


def test_it_finds_japanese_words_including_half_width_katakana():
    rules = [word(1, "バカ", "mask"), word(2, "死ね", "forbid")]
    verdict = check(rules, "お前はﾊﾞｶだな")
    assert verdict.action == "mask"
    # ﾊ + ﾞ + ｶ are 3 original characters (NFKC composes the first two into バ).
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "お前は***だな"
    assert verdict.hits[0].end - verdict.hits[0].start == 3
    assert check(rules, "本当に死ねばいいのに").action == "forbid"
    assert check(rules, "バ カ").action == "mask"


def test_it_counts_offsets_in_code_points_beyond_the_basic_plane():
    rules = [
        word(1, "𠀀𠀁", "mask"),
        word(2, "bad", "mask"),
    ]  # CJK Extension B; bold math letters
    verdict = check(rules, "😀a𠀀𠀁b 𝐛𝐚𝐝!")
    assert [(h.rule_id, h.start, h.end) for h in verdict.hits] == [(1, 2, 4), (2, 6, 9)]
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "😀a**b ***!"


def test_it_finds_korean_words_inside_sentences():
    rules = [word(1, "바보", "mask")]
    verdict = check(rules, "너는 바보야 정말")
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "너는 **야 정말"
    # Decomposed jamo compose to the same syllables (NFKC).
    assert check(rules, "\u1107\u1161\u1107\u1169").action == "mask"


# ------------------------------------------------------------------------------------------------
# Wildcards (Discord AutoMod strategies)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("cat", ["cat", "a cat!", "CAT's toy", "c.a.t"], ["cats", "concat", "scatter"]),
        ("cat*", ["catch", "Catherine", "cat"], ["wildcat", "concatenate"]),
        ("*cat", ["wildcat", "copyCat", "cat"], ["catch", "location"]),
        ("*cat*", ["location", "eduCation", "cat"], ["dog"]),
        (
            "f*ck",
            ["fck", "fuck", "f u ck", "f.u.c.k", "FRECK"],
            ["fine luck", "of duck", "fuckers"],
        ),
        (
            "buy * followers",
            ["buy cheap followers", "buy 1000 followers", "buyfollowers"],
            ["buy a lot of followers"],
        ),
        ("坏*蛋", ["你是坏蛋", "真是坏透了的蛋"], ["蛋坏了"]),
    ],
)
def test_it_matches_wildcards_like_discord_automod(pattern, matching, not_matching):
    rules = [Rule(1, "wildcard", pattern, "forbid")]
    for text in matching:
        assert check(rules, text).action == "forbid", text
    for text in not_matching:
        assert check(rules, text).action == "allow", text


def test_it_masks_the_whole_word_a_wildcard_matches():
    rules = [Rule(1, "wildcard", "cat*", "mask")]
    verdict = check(rules, "a catapult, ok")
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "a ********, ok"


# ------------------------------------------------------------------------------------------------
# Regular expressions
# ------------------------------------------------------------------------------------------------


def test_it_matches_regexes_on_case_folded_text_with_spacing_kept():
    rules = [
        Rule(1, "regex", r"buy\s+\d+\s+followers", "mask"),
        Rule(2, "regex", r"\bwx[:：]\s*\w{6,}", "forbid"),
    ]
    verdict = check(rules, "BUY  500 Followers now")
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "****************** now"
    assert (
        check(rules, "加我 WX：abc123456").action == "forbid"
    )  # full-width colon is NFKC ":"
    assert check(rules, "buy500followers").action == "allow"


def test_it_normalises_the_literals_of_a_regex_like_the_text():
    rules = [
        Rule(1, "regex", r"加微信：\d+", "forbid"),
        Rule(2, "regex", r"（ＶＩＰ）\d", "mask"),
    ]
    assert check(rules, "加微信：12345").action == "forbid"
    assert check(rules, "加微信:12345").action == "forbid"
    assert check(rules, "加 微信 12345").action == "allow"
    # A full-width parenthesis stays a literal after folding, not a group.
    verdict = check(rules, "join (vip)7 now")
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "join ****** now"
    assert compile_regex_or_error(r"（ＶＩＰ）\d") is None


def test_it_treats_a_regex_that_runs_out_of_time_as_no_match():
    ruleset = RuleSet.compile([Rule(1, "regex", r"(a|aa)+$", "forbid"), word(2, "zzz")])
    verdict = ruleset.check(
        from_account="u",
        msg_body=text_body("a" * 40 + "b"),
        cloud_custom_data=None,
        now=NOW,
    )
    assert verdict.action == "allow"
    assert ruleset.regex_timeouts == 1
    # The other rules still work in the same message.
    verdict = ruleset.check(
        from_account="u",
        msg_body=text_body("a" * 40 + "b zzz"),
        cloud_custom_data=None,
        now=NOW,
    )
    assert verdict.action == "forbid"
    assert ruleset.regex_timeouts == 2


def test_it_bounds_the_total_regex_time_of_one_message():
    ruleset = RuleSet.compile(
        [Rule(i, "regex", r"(a|aa)+$", "forbid") for i in range(50)]
    )
    started = time.perf_counter()
    verdict = ruleset.check(
        from_account="u",
        msg_body=text_body("a" * 40 + "b"),
        cloud_custom_data=None,
        now=NOW,
    )
    assert time.perf_counter() - started < 1.0  # 50 x 5 ms would already be 250 ms
    assert verdict.action == "allow"
    assert (
        ruleset.regex_timeouts == 50
    )  # timed out or skipped once the budget was spent


@pytest.mark.parametrize(
    "pattern",
    [
        r"(a+)+$",
        r"(\w*\s?)*x",
        r"(.*x){20}",
        r"(a|aa)+",
        r"(\d|\w)+z",
        r"(?:x+y?)+z",
        r"(?P<n>a+)*b",
    ],
)
def test_it_refuses_catastrophic_patterns_at_save_time(pattern):
    error = compile_regex_or_error(pattern)
    assert error is not None and "exponential" in error


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "[z-a]", "", "   "])
def test_it_refuses_patterns_that_do_not_compile(pattern):
    assert compile_regex_or_error(pattern) is not None


def test_it_refuses_patterns_that_match_everything():
    assert "empty" in compile_regex_or_error(r"x*")


@pytest.mark.parametrize(
    "pattern",
    [
        r"\d{11}",
        r"buy\s+followers",
        r"(foo|bar)+baz",
        r"\p{Han}{2}",
        r"(?i)wx[:：]\s*\w+",
        r"(?<!\d)\d{3}-\d{4}",
    ],
)
def test_it_accepts_ordinary_patterns(pattern):
    assert compile_regex_or_error(pattern) is None


def test_it_prefilters_regexes_by_a_required_literal_without_missing_matches():
    assert required_literal(r"buy\s*\d+\s*followers") == "followers"
    assert required_literal(r"(ab)?CD") == "cd"
    assert required_literal(r"a|b") is None
    assert (
        required_literal(r"(?:foo){e<=1}") is None
    )  # fuzzy syntax the stdlib reads differently
    rules = [
        Rule(1, "regex", r"PROMO\d+", "forbid"),
        Rule(2, "regex", r"x|y{3}", "forbid"),
    ]
    assert check(rules, "use promo42").action == "forbid"
    assert check(rules, "yyy").action == "forbid"
    assert check(rules, "nothing here").action == "allow"


# ------------------------------------------------------------------------------------------------
# Message elements
# ------------------------------------------------------------------------------------------------

RULES = [word(1, "scam", "mask")]


def run(body, ccd=None) -> Verdict:
    return RuleSet.compile(RULES).check(
        from_account="u", msg_body=body, cloud_custom_data=ccd, now=NOW
    )


@pytest.mark.parametrize("key", ["Data", "Desc", "Ext"])
def test_it_inspects_custom_element_strings(key):
    body = [
        {"MsgType": "TIMCustomElem", "MsgContent": {key: "a scam", "Sound": "scam.mp3"}}
    ]
    verdict = run(body)
    # Every string value of MsgContent is read (issue 9): Sound too.
    assert [h.field for h in verdict.hits] == [
        f"MsgBody[0].{key}",
        "MsgBody[0].Sound",
    ]
    assert verdict.msg_body[0]["MsgContent"][key] == "a ****"
    assert verdict.msg_body[0]["MsgContent"]["Sound"] == "****.mp3"


def test_it_looks_inside_the_json_send_custom_msg_wraps():
    data = json.dumps({"BusinessId": "scam_gift", "Data": "free scam inside"})
    body = [{"MsgType": "TIMCustomElem", "MsgContent": {"Data": data}}]
    verdict = run(body)
    assert [(h.field, h.start, h.end) for h in verdict.hits] == [
        ("MsgBody[0].Data.BusinessId", 0, 4),
        ("MsgBody[0].Data.Data", 5, 9),
    ]
    masked = verdict.msg_body[0]["MsgContent"]["Data"]
    assert json.loads(masked) == {"BusinessId": "****_gift", "Data": "free **** inside"}


def test_it_sees_words_hidden_by_json_escapes():
    data = '{"BusinessId":"chat","Data":"\\u0073cam"}'
    verdict = run([{"MsgType": "TIMCustomElem", "MsgContent": {"Data": data}}])
    assert json.loads(verdict.msg_body[0]["MsgContent"]["Data"]) == {
        "BusinessId": "chat",
        "Data": "****",
    }


def test_it_inspects_cloud_custom_data_with_extension_info_json():
    ccd = json.dumps({"ExtensionInfo": json.dumps({"title": "scam king", "level": 3})})
    verdict = run(text_body("hello"), ccd)
    assert [h.field for h in verdict.hits] == ["CloudCustomData.ExtensionInfo.title"]
    assert verdict.msg_body == text_body("hello")
    outer = json.loads(verdict.cloud_custom_data)
    assert json.loads(outer["ExtensionInfo"]) == {"title": "**** king", "level": 3}


def test_it_inspects_plain_and_flat_json_cloud_custom_data():
    assert run(text_body("hi"), "scam").cloud_custom_data == "****"
    verdict = run(text_body("hi"), '{"data":1,"value":"scam"}')
    assert verdict.hits[0].field == "CloudCustomData.value"
    assert json.loads(verdict.cloud_custom_data) == {"data": 1, "value": "****"}


def test_it_leaves_cloud_custom_data_out_when_masking_did_not_change_it():
    verdict = run(text_body("a scam"), '{"level":3}')
    assert verdict.action == "mask"
    assert verdict.cloud_custom_data is None
    assert "CloudCustomData" not in verdict.response()


def test_it_inspects_face_location_and_relay_elements():
    body = [
        {"MsgType": "TIMFaceElem", "MsgContent": {"Index": 1, "Data": "scam face"}},
        {
            "MsgType": "TIMLocationElem",
            "MsgContent": {"Desc": "scam street", "Latitude": 1.5, "Longitude": 2.5},
        },
        {
            "MsgType": "TIMRelayElem",
            "MsgContent": {"Title": "scam", "MsgNum": 1, "AbstractList": ["a: scam"]},
        },
    ]
    verdict = run(body)
    assert [h.field for h in verdict.hits] == [
        "MsgBody[0].Data",
        "MsgBody[1].Desc",
        "MsgBody[2].Title",
        "MsgBody[2].AbstractList[0]",
    ]
    assert verdict.msg_body[1]["MsgContent"] == {
        "Desc": "**** street",
        "Latitude": 1.5,
        "Longitude": 2.5,
    }


def test_it_masks_only_what_matched_and_leaves_other_elements_untouched():
    body = [
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "a scam here"}},
        {
            "MsgType": "TIMImageElem",
            "MsgContent": {
                "UUID": "scam",
                "ImageFormat": 1,
                "ImageInfoArray": [{"URL": "x"}],
            },
        },
        {
            "MsgType": "TIMCustomElem",
            "MsgContent": {"Data": '{"BusinessId":"lv","Data":"LV1"}', "Desc": "fine"},
        },
        {
            "MsgType": "TIMSoundElem",
            "MsgContent": {"Url": "https://e.x/scam.mp3", "Second": 2},
        },
    ]
    original = copy.deepcopy(body)
    verdict = run(body)
    assert body == original  # the input is never mutated
    assert verdict.msg_body[0] == {
        "MsgType": "TIMTextElem",
        "MsgContent": {"Text": "a **** here"},
    }
    # Every string value of every element is read, whatever its MsgType (issue 9);
    # numbers and the JSON that holds no hit are left as they are.
    assert verdict.msg_body[1]["MsgContent"] == {
        "UUID": "****",
        "ImageFormat": 1,
        "ImageInfoArray": [{"URL": "x"}],
    }
    assert verdict.msg_body[3]["MsgContent"] == {
        "Url": "https://e.x/****.mp3",
        "Second": 2,
    }
    assert (
        verdict.msg_body[2]["MsgContent"]["Data"] == '{"BusinessId":"lv","Data":"LV1"}'
    )  # unchanged text kept as is
    json.dumps(verdict.response())


def test_it_keeps_unicode_readable_in_re_serialised_json():
    data = json.dumps({"BusinessId": "弹幕", "Data": "赌博 scam"}, ensure_ascii=False)
    verdict = run([{"MsgType": "TIMCustomElem", "MsgContent": {"Data": data}}])
    assert (
        verdict.msg_body[0]["MsgContent"]["Data"]
        == '{"BusinessId":"弹幕","Data":"赌博 ****"}'
    )


@pytest.mark.parametrize(
    "body",
    [
        None,
        "scam",
        {"MsgType": "TIMTextElem"},
        [None, 1, "scam", ["scam"]],
        [{"MsgType": "TIMTextElem"}],
        [{"MsgType": "TIMTextElem", "MsgContent": "scam"}],
        [{"MsgType": "TIMTextElem", "MsgContent": {"Text": 42}}],
        [{"MsgType": "TIMTextElem", "MsgContent": {"Text": None}}],
        [{"MsgType": ["TIMTextElem"], "MsgContent": {"Text": "scam"}}],
        [{"MsgType": None, "MsgContent": {"Text": "scam"}}],
        [{"MsgContent": {"Text": "scam"}}],
        [{"MsgType": "TIMCustomElem", "MsgContent": {"Data": {"nested": "scam"}}}],
        [{"MsgType": "TIMCustomElem", "MsgContent": {"Data": '{"broken json scam'}}],
        [
            {
                "MsgType": "TIMCustomElem",
                "MsgContent": {"Data": '{"x": NaN, "y": "scam"}'},
            }
        ],
        [{"MsgType": "TIMCustomElem", "MsgContent": {"Data": "[" * 5000 + "]" * 5000}}],
    ],
)
def test_it_never_raises_on_a_malformed_body(body):
    verdict = RuleSet.compile(RULES + [Rule(2, "user", "u", "mask")]).check(
        from_account="u", msg_body=body, cloud_custom_data=None, now=NOW
    )
    assert verdict.action == "mask"
    json.dumps(verdict.response())


def test_it_still_reads_the_good_elements_of_a_partly_malformed_body():
    body = [
        None,
        {"MsgType": "TIMTextElem"},
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "scam"}},
    ]
    verdict = run(body)
    assert [h.field for h in verdict.hits] == ["MsgBody[2].Text"]
    assert verdict.msg_body == [
        None,
        {"MsgType": "TIMTextElem"},
        {"MsgType": "TIMTextElem", "MsgContent": {"Text": "****"}},
    ]
    assert json.loads(json.dumps(verdict.msg_body)) == verdict.msg_body


@pytest.mark.parametrize("ccd", [42, None, ["scam"], {"a": "scam"}])
def test_it_ignores_cloud_custom_data_that_is_not_a_string(ccd):
    verdict = RuleSet.compile(RULES).check(
        from_account=None, msg_body=text_body("hello"), cloud_custom_data=ccd, now=NOW
    )
    assert verdict.action == "allow"


@pytest.mark.parametrize(
    "data",
    [
        '{"Data":"scam","Data":"ok"}',  # duplicate key: the first value must not hide
        '{"Data":"scam","n":1e400}',  # overflows to infinity: not re-serialisable as JSON
        '{"Data":"scam","n":NaN}',
    ],
)
def test_it_scans_json_it_could_not_round_trip_as_plain_text(data):
    verdict = run([{"MsgType": "TIMCustomElem", "MsgContent": {"Data": data}}])
    assert [h.field for h in verdict.hits] == ["MsgBody[0].Data"]
    assert verdict.msg_body[0]["MsgContent"]["Data"] == data.replace("scam", "****")


def test_it_treats_a_json_scalar_string_as_plain_text():
    assert run(text_body("ok"), '"scam"').cloud_custom_data == '"****"'


# ------------------------------------------------------------------------------------------------
# scan_text and the compiled set
# ------------------------------------------------------------------------------------------------


def test_it_scans_free_text_for_the_try_page():
    ruleset = RuleSet.compile(
        [
            word(1, "ass"),
            Rule(2, "allow", "class", "forbid"),
            Rule(3, "regex", r"\d{4}", "mask"),
        ]
    )
    hits = ruleset.scan_text("class 2024 ass", now=NOW)
    # Hits in text order, then the allow entries that suppressed something.
    assert hits == [
        Hit(3, "regex", "mask", "text", 6, 10),
        Hit(1, "word", "forbid", "text", 11, 14),
        Hit(2, "allow", "allow", "text", 0, 5),
    ]


def test_it_shares_one_automaton_between_rules_with_the_same_normalised_term():
    ruleset = RuleSet.compile(
        [
            word(1, "Bad Word", "mask"),
            word(2, "badword", "discard"),
            Rule(3, "allow", "BADWORD", "forbid"),
        ]
    )
    assert len(ruleset._groups) == 1 and len(ruleset._groups[0].terms) == 1
    verdict = check(ruleset, "bad word", user="u")
    # The allow entry covers both hits.
    assert verdict.action == "allow"


def test_it_reports_the_build_time():
    ruleset = RuleSet.compile([word(i, f"term{i}") for i in range(1000)])
    assert 0 < ruleset.build_seconds < 5
    verdict = ruleset.check(
        from_account="u",
        msg_body=text_body("x term999 y"),
        cloud_custom_data=None,
        now=NOW,
    )
    # Substring model: "term999" also contains "term9" and "term99".
    assert sorted(h.rule_id for h in verdict.hits) == [9, 99, 999]


def test_it_works_with_an_empty_rule_set():
    ruleset = RuleSet.compile([])
    assert (
        ruleset.check(
            from_account="u", msg_body=text_body("anything"), cloud_custom_data="x"
        ).action
        == "allow"
    )
    assert ruleset.scan_text("anything") == []


# ------------------------------------------------------------------------------------------------
# Floods and long messages
# ------------------------------------------------------------------------------------------------


def test_it_reports_a_flood_of_one_entry_as_one_hit_and_masks_it_all():
    verdict = check([word(1, "哈哈", "mask")], "笑死" + "哈" * 5000 + "了")
    assert verdict.action == "mask"
    assert [(h.rule_id, h.start, h.end) for h in verdict.hits] == [(1, 2, 5002)]
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "笑死" + "*" * 5000 + "了"


def test_it_keeps_separate_occurrences_as_separate_hits():
    verdict = check([word(1, "spam", "mask")], "spam and spam, spamspam")
    assert [(h.start, h.end) for h in verdict.hits] == [(0, 4), (9, 13), (15, 23)]
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "**** and ****, ********"


def test_it_applies_the_allow_list_to_each_occurrence_of_a_flood():
    rules = [word(1, "哈哈", "forbid"), Rule(2, "allow", "哈哈哈", "forbid")]
    # Every "哈哈" lies inside some "哈哈哈", so the laughter is allowed ...
    verdict = check(rules, "哈" * 3000)
    assert verdict.action == "allow"
    assert [(h.rule_id, h.action, h.start, h.end) for h in verdict.hits] == [
        (2, "allow", 0, 3000)
    ]
    # ... but not a lone "哈哈".
    assert check(rules, "好 哈哈 好").action == "forbid"


def test_it_answers_a_pathological_flood_within_the_deadline():
    # Ten nested terms over 12,000 letters: 120,000 overlapping matches.
    rules = [word(i, "a" * i, "mask") for i in range(1, 11)]
    started = time.perf_counter()
    verdict = check(rules, "a" * 12_000)
    assert time.perf_counter() - started < 2.0  # the provider's webhook timeout
    assert verdict.msg_body[0]["MsgContent"]["Text"] == "*" * 12_000


@pytest.mark.parametrize("pattern", ["*a*", "a*", "*a", "a*b*c", "*b*a*"])
def test_it_keeps_wildcards_linear_on_long_messages(pattern):
    rules = [Rule(1, "wildcard", pattern, "mask")]
    started = time.perf_counter()
    for text in ("a" * 12_000, "ab" * 6_000, "abc " * 3_000):
        check(rules, text)
    assert time.perf_counter() - started < 2.0


def test_the_hot_path_runs_compiled_when_make_built_it():
    # make test builds the compiled hot path and says so; the suite then tests it.
    import importlib
    import os

    import webhooks
    import webhooks.matching
    from webhooks import compiled

    if not os.environ.get("LIVEADMIN_EXPECT_COMPILED"):
        pytest.skip("not run by make test")
    assert webhooks.COMPILED and webhooks.matching.COMPILED
    for name in compiled.MODULES + compiled.EXTENSIONS:
        assert importlib.import_module(name).__file__.endswith(".so"), name


def test_a_build_older_than_its_sources_is_never_used(tmp_path, monkeypatch):
    import sys

    from webhooks import compiled

    package = "webhooks.matching"
    path = ["webhooks/matching"]
    assert not compiled.use_if_current(package, path, tmp_path)  # nothing built
    (tmp_path / compiled.STAMP).write_text("0" * 64 + "\n")  # built from other sources
    assert not compiled.use_if_current(package, path, tmp_path)
    assert path == ["webhooks/matching"]
    (tmp_path / compiled.STAMP).write_text(compiled.source_digest() + "\n")
    monkeypatch.setenv("LIVEADMIN_PURE_PYTHON", "1")
    assert not compiled.use_if_current(package, path, tmp_path)
    monkeypatch.delenv("LIVEADMIN_PURE_PYTHON")
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert compiled.use_if_current(package, path, tmp_path)
    assert path == [str(tmp_path / "webhooks" / "matching"), "webhooks/matching"]


def test_the_rules_caches_rule_sets_are_kept_out_of_the_collectors_sight():
    # A collection after a rebuild walked every object of the new rules holding the GIL
    # (RuleSet.compile); frozen, they are never walked (refcounting still frees them).
    import gc

    rules = [Rule(i, "word", f"blocked{i:05d}x", "forbid") for i in range(2000)]
    kept, passing = (RuleSet.compile(rules, long_lived=k) for k in (True, False))
    tracked = gc.get_objects()
    assert not any(o is kept or o is kept._automaton for o in tracked)
    # A short-lived one (a dry run's) freezes nothing: the freeze takes every object
    # alive, and a request's reference cycles would never be collected.
    assert any(o is passing for o in tracked)
    del tracked
    assert check(kept, "say blocked00042x now").action == "forbid"
