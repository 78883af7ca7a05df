"""`manage.py blocklist add|import|export|test`."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.factories import make_app, make_user
from webhooks.models import Blocklist, BlocklistChange, BlocklistEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def app(db):
    return make_app(name="live")


def run(*args: str) -> list[dict]:
    out = StringIO()
    call_command("blocklist", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_it_adds_an_entry_to_the_apps_list(app):
    [line] = run("add", "--app", "live", "--term", "spam", "--action", "discard")
    entry = BlocklistEntry.objects.get()
    assert line == {
        "added": entry.pk,
        "list": "live blocklist",
        "term": "spam",
        "kind": "word",
        "action": "discard",
        "code": None,
        "info": "",
        "expires_at": None,
        "note": "",
        "exact": 0,
        "leet": 0,
    }
    assert entry.blocklist.app == app
    assert (
        BlocklistChange.objects.filter(object_type="entry").get().actor_name
        == "manage.py"
    )


def test_it_adds_to_the_shared_list_with_a_code(app):
    make_user("mod", role=None)
    [line] = run(
        "add",
        "--all-apps",
        "--term",
        "casino",
        "--code",
        "10150",
        "--info",
        "No",
        "--as",
        "mod",
    )
    assert (line["list"], line["action"], line["code"], line["info"]) == (
        "Shared blocklist",
        "forbid_code",
        10150,
        "No",
    )
    assert Blocklist.objects.get().app is None
    assert BlocklistChange.objects.filter(object_type="entry").get().actor_name == "mod"


def test_it_tests_a_message_and_prints_the_decision_json(app):
    run("add", "--app", "live", "--term", "darn", "--action", "mask")
    assert run("test", "--app", "live", "--text", "oh darn") == [
        {
            "ActionStatus": "OK",
            "ErrorInfo": "",
            "ErrorCode": 0,
            "MsgBody": [{"MsgType": "TIMTextElem", "MsgContent": {"Text": "oh ****"}}],
        }
    ]
    assert run("test", "--app", "live", "--text", "fine") == [
        {"ActionStatus": "OK", "ErrorInfo": "", "ErrorCode": 0}
    ]


def test_it_imports_and_exports_round_trip(app, tmp_path):
    source = tmp_path / "words.csv"
    source.write_text("spam\ntroll-1,user,discard\n([,regex\nspam\n")
    lines = run("import", "--app", "live", "--file", str(source))
    assert lines[-1] == {
        "list": "live blocklist",
        "added": 2,
        "skipped": 1,
        "refused": 1,
    }
    assert {"skipped": {"line": 4, "term": "spam", "reason": "duplicate"}} in lines
    assert any("refused" in line and line["refused"]["line"] == 3 for line in lines)

    exported = run("export", "--app", "live")
    assert [(e["term"], e["kind"], e["action"]) for e in exported] == [
        ("troll-1", "user", "discard"),
        ("spam", "word", "forbid"),
    ]
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join(json.dumps(e) for e in exported))
    make_app(name="copy")
    assert run("import", "--app", "copy", "--file", str(dump))[-1]["added"] == 2
    assert run("export", "--app", "copy") == [
        e | {"list": "copy blocklist"} for e in exported
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "--app", "nope", "--term", "x"], "no app called 'nope'"),
        (
            ["add", "--app", "live", "--term", "(a+)+$", "--kind", "regex"],
            "Refused regular expression",
        ),
        (
            ["add", "--app", "live", "--term", "x", "--code", "5"],
            "between 10100 and 10200",
        ),
        (
            ["add", "--app", "live", "--term", "x", "--info", "why"],
            "--info goes with --code",
        ),
        (
            ["add", "--app", "live", "--term", "x", "--expires", "soon"],
            "--expires must be an ISO",
        ),
        (
            ["add", "--app", "live", "--term", "x", "--as", "ghost"],
            "no user called 'ghost'",
        ),
        (
            ["import", "--app", "live", "--file", "/nonexistent/words.txt"],
            "cannot read",
        ),
        (
            ["import", "--app", "live", "--file", "words.pdf"],
            "must end in .txt, .csv or .jsonl",
        ),
        (["test", "--app", "nope", "--text", "x"], "no app called 'nope'"),
    ],
)
def test_it_exits_2_on_bad_input(app, args, message):
    with pytest.raises(CommandError) as exc:
        call_command("blocklist", *args, stdout=StringIO())
    assert exc.value.returncode == 2
    assert message in str(exc.value)
    assert not BlocklistEntry.objects.exists()
