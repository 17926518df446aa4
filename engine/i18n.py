"""One message catalogue for every text a user reads.

Message ids are English sentences with ``{name}`` placeholders. The Chinese catalogue lives in
``engine/locale/zh_CN/LC_MESSAGES/liuhen.po`` and is read with Babel when first needed, so the
``.po`` file is the only copy kept in the repository. Extraction keywords: ``msg`` and
``translate:2`` (see the Makefile target ``messages``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
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


@dataclass(frozen=True)
class MessageList(Message):
    """Items shown as one list, separated the way the reader's language separates list items (、 in Chinese)."""

    items: tuple[Any, ...] = ()

    def render(self, locale: str | None) -> str:
        separator = translate(locale, ", ")
        return separator.join(item.render(locale) if isinstance(item, Message) else str(item) for item in self.items)

    def __str__(self) -> str:
        return ", ".join(str(item) for item in self.items)


def message_list(items: Iterable[Any]) -> MessageList:
    """Wrap ``items`` (texts or messages) as one list parameter of a message."""
    return MessageList(", ", {}, tuple(items))


def dynamic(msgid: str) -> Message:
    """Wrap a value computed at run time (a status, an event kind) that the catalogue lists in
    ``engine.catalog.DYNAMIC_MSGIDS``, so it is translated where it is shown."""
    return Message(msgid)


def msg(msgid: str, **params: Any) -> Message:
    """Mark ``msgid`` for the catalogue and bind its placeholder values."""
    return Message(msgid, params)


# Keys of a stored message in a JSON document such as a trace payload.
MESSAGE_ID_KEY = "message_id"
MESSAGE_PARAMS_KEY = "message_params"
MESSAGE_LIST_KEY = "message_list"
_JSON_SCALARS = (str, int, float, bool, type(None))


def message_to_json(message: Message) -> dict[str, Any]:
    """Store ``message`` as its msgid and placeholder values, so it can be rendered later in any locale.

    Returns an empty dict for a Message subclass that renders itself differently, because its msgid alone
    does not describe it. A parameter that is a Message is stored the same way, nested; a value that JSON
    cannot hold is stored as its text.
    """
    if type(message) is not Message:
        return {}
    return {MESSAGE_ID_KEY: message.msgid,
            MESSAGE_PARAMS_KEY: {key: _param_to_json(value) for key, value in message.params.items()}}


def message_from_json(document: dict[str, Any]) -> Message | None:
    """Read back a message stored by ``message_to_json``, or None when ``document`` contains none."""
    msgid, params = document.get(MESSAGE_ID_KEY), document.get(MESSAGE_PARAMS_KEY)
    if not isinstance(msgid, str) or not isinstance(params, dict):
        return None
    return Message(msgid, {str(key): _param_from_json(value) for key, value in params.items()})


def _param_to_json(value: Any) -> Any:
    if isinstance(value, MessageList):
        return {MESSAGE_LIST_KEY: [_param_to_json(item) for item in value.items]}
    if isinstance(value, Message):
        stored = message_to_json(value)
        return stored or str(value)
    return value if isinstance(value, _JSON_SCALARS) else str(value)


def _param_from_json(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get(MESSAGE_LIST_KEY), list):
        return message_list(_param_from_json(item) for item in value[MESSAGE_LIST_KEY])
    if isinstance(value, dict):
        return message_from_json(value) or value
    return value
