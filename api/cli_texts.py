"""Translate argparse's own texts (usage lines, section titles, parse errors) with liuhen's catalogue.

argparse looks its texts up through ``gettext`` under its own domain, which has no Chinese catalogue
installed on most machines, so `liuhen --help` would mix Chinese help with English headings. The texts
below are argparse's msgids, which keep its ``%``-style placeholders; they contain no braces, so the
catalogue's ``str.format`` leaves those placeholders alone.
"""

from __future__ import annotations

import argparse
import re

from engine.i18n import Message, msg

ARGPARSE_TEXTS = frozenset(message.msgid for message in (
    msg("usage: "),
    msg("positional arguments"),
    msg("options"),
    msg("show this help message and exit"),
    msg("the following arguments are required: %s"),
    msg("unrecognized arguments: %s"),
    msg("argument %(argument_name)s: %(message)s"),
    msg("invalid choice: %(value)r (choose from %(choices)s)"),
    msg("invalid %(type)s value: %(value)r"),
    msg("expected one argument"),
    msg("ambiguous option: %(option)s could match %(matches)s"),
    msg("%(prog)s: error: %(message)s\n"),
))


# Section headings of the help; argparse writes each followed by an ASCII colon.
_HEADINGS = ("positional arguments", "options")
_locale: str | None = None


def install(locale: str) -> None:
    """Make argparse print its own texts in ``locale``; texts not listed above stay as argparse has them."""
    global _locale
    _locale = locale

    def lookup(text: str) -> str:
        return Message(text).render(locale) if text in ARGPARSE_TEXTS else text

    # argparse calls the module-level name ``_`` for every text it prints.
    argparse._ = lookup  # type: ignore[attr-defined]


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose help ends section headings with the colon of the installed locale.

    Python 3.11's argparse appends an ASCII colon to each heading itself, so a Chinese heading would read
    "位置参数:". Subparsers are created with the class of their parent, so they get this one too.
    """

    def format_help(self) -> str:
        text = super().format_help()
        colon = Message(": ").render(_locale).strip()
        for heading in _HEADINGS:
            translated = Message(heading).render(_locale)
            text = re.sub(rf"(?m)^(\s*){re.escape(translated)}:$", rf"\g<1>{translated}{colon}", text)
        return text
