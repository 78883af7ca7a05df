"""The Chinese and Korean catalogues: complete, compiled, and up to date with the
sources (`make messages` updates and compiles them)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

LANGUAGES = ["ko", "zh_Hans"]
LOCALE = Path(settings.BASE_DIR) / "locale"
# Left out of the copy the catalogues are regenerated in (not sources, or large).
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "var", "staticfiles", "node_modules", "__pycache__", "*_cache"
)


def catalogue(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


def entries(po: Path) -> str:
    """The catalogue's entries in a canonical form: no header, no source locations."""
    text = subprocess.run(
        ["msgcat", "--no-location", "--no-wrap", "--sort-output", str(po)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # The header entry (msgid "") carries the creation date: leave it out.
    return re.sub(r'\A(?:#.*\n)*msgid ""\nmsgstr (?:".*"\n)+\n', "", text)


def unfinished(po: Path, flag: str) -> list[str]:
    out = subprocess.run(
        ["msgattrib", flag, "--no-location", "--no-wrap", str(po)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [m for m in re.findall(r'^msgid "(.*)"$', out, re.M) if m]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated(language):
    po = catalogue(language)
    assert unfinished(po, "--untranslated") == []
    assert unfinished(po, "--only-fuzzy") == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_is_the_committed_one(language, tmp_path):
    po = catalogue(language)
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", compiled, po], check=True)
    assert compiled.read_bytes() == po.with_suffix(".mo").read_bytes(), (
        f"{po.with_suffix('.mo')} is older than {po.name}: run `make messages`"
    )


def test_the_catalogues_hold_exactly_the_translatable_strings_of_the_sources(
    tmp_path,
):
    """`make messages` on a copy of the sources changes no catalogue."""
    copy = tmp_path / "src"
    shutil.copytree(settings.BASE_DIR, copy, ignore=NOT_SOURCES)
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": "",
        "LIVEADMIN_VAR_DIR": str(tmp_path / "var"),
    }
    venv = Path(sys.prefix)
    subprocess.run(
        # -o: this environment is installed already; never sync it from the copy.
        ["make", "--no-print-directory", "-o", f"{venv}/.installed", "messages"]
        + [f"VENV={venv}"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    for language in LANGUAGES:
        fresh = entries(copy / "locale" / language / "LC_MESSAGES" / "django.po")
        assert fresh == entries(catalogue(language)), (
            f"locale/{language} is behind the sources: run `make messages`, "
            "translate the new entries and run it again"
        )
