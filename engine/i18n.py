"""One message catalogue for every text a user reads.

Message ids are English sentences with ``{name}`` placeholders. The Chinese catalogue lives in
``engine/locale/zh_CN/LC_MESSAGES/liuhen.po`` and is read with Babel when first needed, so the
``.po`` file is the only copy kept in the repository. Extraction keywords: ``msg`` and
``translate:2`` (see the Makefile target ``messages``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "liuhen"
DEFAULT_LOCALE = "zh_CN"
SUPPORTED_LOCALES = ("zh_CN", "en")


def normalize_locale(value: str | None) -> str:
    """Map a setting or an ``Accept-Language`` header to a supported locale, Chinese by default."""
    if not value:
        return DEFAULT_LOCALE
    for part in value.split(","):
        tag = part.split(";")[0].strip().replace("-", "_").lower()
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT_LOCALE


@functools.cache
def _catalogue(locale: str) -> dict[str, str]:
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and message.string and not message.fuzzy
    }


def translate(locale: str | None, msgid: str, **params: Any) -> str:
    """Translate ``msgid`` into ``locale`` and fill in its placeholders; Message values are translated too."""
    text = _catalogue(normalize_locale(locale)).get(msgid, msgid)
    params = {key: value.render(locale) if isinstance(value, Message) else value for key, value in params.items()}
    # Every msgid is a format string, even without placeholders, so literal braces are written {{ }}.
    return text.format(**params)


@dataclass(frozen=True)
class Message:
    """A user-facing text kept untranslated until the locale of its reader is known."""

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, locale: str | None) -> str:
        return translate(locale, self.msgid, **self.params)

    def __str__(self) -> str:
        return self.msgid.format(**self.params)


def dynamic(msgid: str) -> Message:
    """Wrap a value computed at run time (a status, an event kind) that the catalogue lists in
    ``engine.catalog.DYNAMIC_MSGIDS``, so it is translated where it is shown."""
    return Message(msgid)


def msg(msgid: str, **params: Any) -> Message:
    """Mark ``msgid`` for the catalogue and bind its placeholder values."""
    return Message(msgid, params)
