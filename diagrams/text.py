"""Measure, wrap and escape label text for Graphviz HTML-like labels."""

from __future__ import annotations

import html
import unicodedata


def display_width(text: str) -> int:
    """Count display cells: two for wide and full-width characters such as Chinese, one for others."""
    return sum(2 if unicodedata.east_asian_width(char) in ("W", "F") else 1 for char in text)


def truncate(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` display cells, ending with an ellipsis when cut."""
    text = " ".join(text.split())
    if display_width(text) <= limit:
        return text
    characters, width = [], 0
    for char in text:
        width += display_width(char)
        if width > limit - 1:
            break
        characters.append(char)
    return "".join(characters).rstrip() + "…"


def wrap(text: str, width: int) -> list[str]:
    """Break ``text`` into lines of at most ``width`` display cells.

    Latin words stay whole unless a single word is wider than a line. Chinese text, which has no
    spaces, breaks between any two characters.
    """
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        line = ""
        for token in _tokens(" ".join(paragraph.split())):
            candidate = line + token
            if display_width(candidate.rstrip()) <= width or not line.strip():
                line = candidate
                continue
            lines.append(line.rstrip())
            line = token.lstrip()
        while display_width(line.rstrip()) > width:
            head, line = _split_at_width(line, width)
            lines.append(head)
        if line.strip() or not lines:
            lines.append(line.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    """Split into Latin words (with their trailing space) and single wide characters."""
    tokens: list[str] = []
    word = ""
    for char in text:
        if display_width(char) == 2:
            if word:
                tokens.append(word)
                word = ""
            tokens.append(char)
        elif char == " ":
            tokens.append(word + " ")
            word = ""
        else:
            word += char
    if word:
        tokens.append(word)
    return tokens


def _split_at_width(text: str, width: int) -> tuple[str, str]:
    cut, used = 0, 0
    for index, char in enumerate(text):
        used += display_width(char)
        if used > width:
            break
        cut = index + 1
    cut = max(cut, 1)
    return text[:cut].rstrip(), text[cut:].lstrip()


def html_lines(lines: list[str]) -> str:
    """Join escaped ``lines`` with the line breaks of an HTML-like label."""
    return "<BR/>".join(escape(line) for line in lines)


def escape(text: str) -> str:
    """Escape ``text`` for an HTML-like label.

    Graphviz 2.43 expands escape sequences such as ``\\N`` (the node name) in HTML-like labels too, after
    reading character references, so a backslash is doubled rather than written as ``&#92;``.
    """
    return html.escape(text, quote=True).replace("\\", "\\\\")
