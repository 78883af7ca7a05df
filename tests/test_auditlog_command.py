from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from messaging.services.audit import EXPORT_HEADER
from tests.factories import make_app, make_send_record, make_user

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def log():
    app, other_app = make_app(name="main"), make_app(name="second")
    user = make_user("ops")
    return {
        "a": make_send_record(app=app, user=user, room_id="r1", created_at=T0),
        "b": make_send_record(
            app=app,
            user=user,
            room_id="r2",
            outcome="failed",
            error_code=10017,
            error_info="=muted",
            created_at=T0 + timedelta(hours=1),
        ),
        "c": make_send_record(
            app=other_app, user=user, room_id="r1", created_at=T0 + timedelta(hours=2)
        ),
    }


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("auditlog", "export", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_exports_csv_with_the_download_columns(log):
    out, err = run("--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == EXPORT_HEADER
    assert [int(r[0]) for r in rows[1:]] == [log[k].pk for k in "cba"]
    row = dict(zip(rows[0], rows[2], strict=True))
    assert row["app"] == "main"
    assert row["user"] == "ops"
    assert row["outcome"] == "failed"
    assert row["error_info"] == "'=muted"  # the same formula guard as the page
    assert row["created_at"] == "2026-02-01T09:00:00+00:00"
    assert json.loads(err) == {"exported": 3, "format": "csv"}


def test_it_exports_json_lines(log):
    out, _ = run("--format", "jsonl", "--outcome", "failed")
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 1
    assert list(lines[0]) == EXPORT_HEADER
    record = log["b"]
    assert lines[0]["id"] == record.pk
    assert lines[0]["error_code"] == 10017
    assert lines[0]["error_info"] == "=muted"  # JSON needs no spreadsheet guard
    assert lines[0]["request_body"] == record.request_body
    assert lines[0]["response_body"] == record.response_body


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--app", "main"], "ba"),
        (["--room", "r1"], "ca"),
        (["--outcome", "ok"], "ca"),
        (["--since", "2026-02-01T09:00:00+00:00"], "cb"),
        (["--until", "2026-02-01T09:00:00Z"], "a"),
        # A time without an offset is read in TIME_ZONE (UTC here).
        (["--since", "2026-02-01T08:30", "--until", "2026-02-01T10:00"], "b"),
        (["--since", "2026-02-01", "--app", "second", "--room", "r1"], "c"),
    ],
)
def test_it_filters_the_export(log, args, expected):
    out, _ = run("--format", "jsonl", *args)
    assert [json.loads(line)["id"] for line in out.splitlines()] == [
        log[k].pk for k in expected
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since: 'yesterday' is not an ISO 8601 date"),
        (["--until", "2026-13-01"], "--until: '2026-13-01' is not an ISO 8601 date"),
        (["--app", "nope"], "--app: no app is called 'nope' (apps: main, second)"),
        (
            ["--since", "2026-02-02", "--until", "2026-02-01"],
            "--until must be later than --since",
        ),
    ],
)
def test_it_exits_2_on_bad_input(log, args, message):
    with pytest.raises(CommandError, match="^" + re.escape(message)) as exc:
        run(*args)
    assert exc.value.returncode == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
        (["--outcome", "maybe"], "argument --outcome: invalid choice: 'maybe'"),
        (["--since", "soon"], "--since: 'soon' is not an ISO 8601 date"),
    ],
)
def test_it_exits_2_from_the_command_line(args, message):
    # The real command line: argparse's own errors exit 2 as well.
    result = subprocess.run(
        [sys.executable, "manage.py", "auditlog", "export", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_it_exports_an_empty_log_as_a_header():
    out, err = run()
    assert out.splitlines() == [",".join(EXPORT_HEADER)]
    assert json.loads(err) == {"exported": 0, "format": "csv"}
