"""Django's makemessages without fuzzy matching.

A changed source string becomes a new, untranslated entry instead of a "fuzzy"
guess from a similar one; tests/test_translations.py then names it, and nobody
ships a guess by accident.
"""

from django.core.management.commands import makemessages


class Command(makemessages.Command):
    msgmerge_options = [*makemessages.Command.msgmerge_options, "--no-fuzzy-matching"]
