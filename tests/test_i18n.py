"""The Chinese catalogue covers every message the code can show, with the same placeholders."""

from __future__ import annotations

import ast
import re
import string
import textwrap
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog

from engine.catalog import (
    DYNAMIC_MSGIDS,
    EVENT_KIND_MSGIDS,
    ROOT,
    STATUS_MSGIDS,
    catalog_issues,
    collect_msgids,
    default_sources,
    extract,
    load_catalog,
    save_catalog,
    update_catalog,
)
from engine.i18n import normalize_locale, translate

FORMATTER = string.Formatter()


@pytest.fixture(scope="module")
def extraction() -> Any:
    return extract(default_sources())


@pytest.fixture(scope="module")
def translations() -> dict[str, str]:
    return {str(message.id): str(message.string) for message in load_catalog() if message.id}


def _placeholders(text: str) -> list[str]:
    """List the replacement fields of ``text`` as written, such as ``{value!r}``.

    Raises ValueError on a single ``{`` or ``}`` that opens or closes no field.
    """
    fields = []
    for _literal, name, spec, conversion in FORMATTER.parse(text):
        if name is None:
            continue
        written = name
        if conversion:
            written += f"!{conversion}"
        if spec:
            written += f":{spec}"
        fields.append("{" + written + "}")
    return fields


def _dummy_values(text: str) -> dict[str, Any]:
    """Give every placeholder of ``text`` a value its format spec accepts."""
    values: dict[str, Any] = {}
    for _literal, name, spec, _conversion in FORMATTER.parse(text):
        if name is None:
            continue
        base = re.split(r"[.\[]", name, maxsplit=1)[0]
        if spec and spec[-1] in "bcdoxXn":
            values[base] = 7
        elif spec and spec[-1] in "eEfFgG%":
            values[base] = 1.5
        else:
            values[base] = "x"
    return values


# The catalogue against the code.

def test_every_msgid_translated(extraction: Any, translations: dict[str, str]) -> None:
    missing = [
        f"{msgid!r} ({', '.join(str(location) for location in locations[:2])})"
        for msgid, locations in sorted(extraction.msgids.items())
        if not translations.get(msgid)
    ]
    assert not missing, "no zh_CN translation; run `make messages` and translate:\n" + "\n".join(missing)


def test_dynamic_msgids_extracted(extraction: Any) -> None:
    assert set(DYNAMIC_MSGIDS) <= set(extraction.msgids)


def test_msgids_are_literals(extraction: Any) -> None:
    problems = [str(problem) for problem in extraction.problems]
    assert not problems, "msgids the extractor cannot read:\n" + "\n".join(problems)


def test_no_unused_catalogue_entries(extraction: Any, translations: dict[str, str]) -> None:
    unused = sorted(set(translations) - set(extraction.msgids))
    assert not unused, "entries no code uses; run `make messages`:\n" + "\n".join(map(repr, unused))


def test_placeholders_match(translations: dict[str, str]) -> None:
    mismatched = []
    for msgid, text in sorted(translations.items()):
        if not text:
            continue
        try:
            translated = _placeholders(text)
        except ValueError as exc:
            mismatched.append(f"{msgid!r}: translation has a stray brace ({exc})")
            continue
        expected = _placeholders(msgid)
        if set(translated) != set(expected):
            mismatched.append(f"{msgid!r}: expected {sorted(set(expected))}, got {sorted(set(translated))}")
    assert not mismatched, "\n".join(mismatched)


def test_translations_format(translations: dict[str, str]) -> None:
    failed = []
    for msgid, text in sorted(translations.items()):
        if not text:
            continue
        values = _dummy_values(msgid)
        try:
            rendered = translate("zh_CN", msgid, **values)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            failed.append(f"{msgid!r}: {type(exc).__name__}: {exc}")
            continue
        if values and rendered != text.format(**values):
            failed.append(f"{msgid!r}: translate() did not use the catalogue")
    assert not failed, "\n".join(failed)


def test_rendered_text_has_no_brace_escapes(translations: dict[str, str]) -> None:
    """A msgid without placeholders is shown as written, so ``{{`` in it would reach the reader doubled."""
    doubled = []
    for msgid in sorted(translations):
        if _placeholders(msgid):
            continue
        for locale in ("en", "zh_CN"):
            rendered = translate(locale, msgid)
            if "{{" in rendered or "}}" in rendered:
                doubled.append(f"{locale}: {msgid!r} renders as {rendered!r}")
    assert not doubled, "\n".join(doubled)


def _string_value(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _engine_values() -> tuple[set[str], set[str]]:
    """Collect the event kinds passed to NewEvent or StepEvent and the literal statuses in engine/."""
    kinds: set[str | None] = set()
    statuses: set[str | None] = set()
    for path in sorted((ROOT / "engine").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and node.args:
                if getattr(node.func, "attr", getattr(node.func, "id", None)) in ("NewEvent", "StepEvent"):
                    kinds.add(_string_value(node.args[0]))
            elif isinstance(node, ast.keyword) and node.arg == "status":
                statuses.add(_string_value(node.value))
            elif isinstance(node, ast.Dict):
                pairs = zip(node.keys, node.values, strict=True)
                statuses.update(_string_value(v) for k, v in pairs if _string_value(k) == "status")
    return {kind for kind in kinds if kind}, {status for status in statuses if status}


def test_dynamic_msgids_cover_engine_values() -> None:
    kinds, statuses = _engine_values()

    assert kinds, "found no NewEvent or StepEvent call in engine/"
    assert statuses, "found no literal status in engine/"
    assert kinds <= set(EVENT_KIND_MSGIDS), f"not in EVENT_KIND_MSGIDS: {kinds - set(EVENT_KIND_MSGIDS)}"
    assert statuses <= set(STATUS_MSGIDS), f"not in STATUS_MSGIDS: {statuses - set(STATUS_MSGIDS)}"


# Run-time translation.

def test_translate_english() -> None:
    assert translate("en", "Case {case_id} does not exist.", case_id=7) == "Case 7 does not exist."


def test_translate_chinese() -> None:
    assert translate("zh_CN", "Case {case_id} does not exist.", case_id=7) == "办件 7 不存在。"


def test_translate_dynamic_value() -> None:
    assert translate("zh_CN", "running") == "办理中"
    assert translate("en", "running") == "running"


def test_translate_unknown_msgid_falls_back() -> None:
    assert translate("zh_CN", "Not in the catalogue {n}.", n=1) == "Not in the catalogue 1."


@pytest.mark.parametrize(("value", "expected"), [
    ("zh-CN,zh;q=0.9", "zh_CN"),
    ("en-US", "en"),
    ("fr", "zh_CN"),
    (None, "zh_CN"),
    ("", "zh_CN"),
])
def test_normalize_locale(value: str | None, expected: str) -> None:
    assert normalize_locale(value) == expected


# The extractor on small sources.

def _extract_source(tmp_path: Path, source: str) -> Any:
    path = tmp_path / "sample.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return extract([tmp_path])


def test_extract_literal_forms(tmp_path: Path) -> None:
    result = _extract_source(tmp_path, """
        PREFIX = "Step {step}: "
        REASONS = {"a": "first reason.", "b": "second reason."}
        msg("Plain {x}.")
        msg("Joined " "by the parser.")
        msg(PREFIX + "added.")
        translate(locale, "Yes." if ok else "No.")
        out.error("To stderr.")
        t("Help text.")
        for tag, reason in REASONS.items():
            msg("Element {tag}: " + reason)
    """)

    assert result.problems == []
    for msgid in ("Plain {x}.", "Joined by the parser.", "Step {step}: added.", "Yes.", "No.", "To stderr.",
                  "Help text.", "Element {tag}: first reason.", "Element {tag}: second reason."):
        assert msgid in result.msgids, msgid


def test_extract_location(tmp_path: Path) -> None:
    result = _extract_source(tmp_path, """
        x = 1
        msg("Here.")
    """)

    assert [location.line for location in result.msgids["Here."]] == [3]


def test_extract_reports_non_literals(tmp_path: Path) -> None:
    result = _extract_source(tmp_path, """
        msg(f"Case {case_id}.")
        msg(message.msgid)
        translate(locale, "Prefix: " + other)
    """)

    assert [problem.location.line for problem in result.problems] == [2, 3, 4]
    assert not set(result.msgids) - set(DYNAMIC_MSGIDS)


def test_extract_dynamic_subscript(tmp_path: Path) -> None:
    result = _extract_source(tmp_path, """
        out.text(case["status"])
        out.text(event["kind"])
        out.text(case["priority"])
    """)

    assert [problem.location.line for problem in result.problems] == [4]
    assert result.msgids["running"][0].line == 2
    assert result.msgids["case_started"][0].line == 3


def test_collect_msgids_includes_dynamic(tmp_path: Path) -> None:
    (tmp_path / "empty.py").write_text("", encoding="utf-8")
    assert set(collect_msgids([tmp_path])) == set(DYNAMIC_MSGIDS)


# Updating a catalogue.

def _catalog(entries: dict[str, str]) -> Catalog:
    catalog = Catalog(locale="zh_CN", fuzzy=False)
    for msgid, text in entries.items():
        catalog.add(msgid, text)
    return catalog


def test_update_adds_and_obsoletes() -> None:
    catalog = _catalog({"Kept.": "保留。", "Gone.": "删除。"})

    update = update_catalog(catalog, ["Kept.", "New {x}."])

    assert update.added == ["New {x}."]
    assert update.obsoleted == ["Gone."]
    assert catalog["Kept."].string == "保留。"
    assert catalog["New {x}."].string == ""
    assert catalog.get("Gone.") is None
    assert "Gone." in catalog.obsolete


def test_update_restores_obsolete_translation() -> None:
    catalog = _catalog({"Back.": "回来。"})
    update_catalog(catalog, [])

    update = update_catalog(catalog, ["Back."])

    assert update.restored == ["Back."]
    assert catalog["Back."].string == "回来。"


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "liuhen.po"
    catalog = load_catalog(path)
    update_catalog(catalog, ["Hello {name}.", "Old."])
    catalog["Hello {name}."].string = "你好，{name}。"
    update_catalog(catalog, ["Hello {name}."])

    save_catalog(catalog, path)
    loaded = load_catalog(path)

    assert loaded["Hello {name}."].string == "你好，{name}。"
    assert "Old." in loaded.obsolete
    assert "Old." not in path.read_text(encoding="utf-8").split("#~")[0]


def test_check_lists_issues(tmp_path: Path) -> None:
    result = _extract_source(tmp_path, """
        msg("Translated.")
        msg("Untranslated.")
        msg("Not yet in the catalogue.")
        msg(f"{x}")
    """)
    catalog = _catalog({"Translated.": "已翻译。", "Untranslated.": "", "Unused.": "无用。"})
    for msgid in DYNAMIC_MSGIDS:
        catalog.add(msgid, msgid)

    issues = catalog_issues(catalog, result)

    assert len(issues) == 4
    assert issues[0].startswith("msgid cannot be extracted")
    assert any("missing from the catalogue" in issue and "Not yet" in issue for issue in issues)
    assert any(issue.startswith("untranslated: 'Untranslated.'") for issue in issues)
    assert any("no longer used" in issue and "Unused." in issue for issue in issues)
