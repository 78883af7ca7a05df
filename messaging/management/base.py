"""What messaging's commands share: their help in the reader's language."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils.translation import gettext


class TranslatedCommand(BaseCommand):
    """A command whose ``help`` is marked with ``gettext_noop`` (a plain string, so
    ``manage.py help`` and argparse get a str) and shown translated in ``--help``."""

    def create_parser(
        self, prog_name: str, subcommand: str, **kwargs: Any
    ) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        if self.help:
            parser.description = gettext(self.help)
        return parser
