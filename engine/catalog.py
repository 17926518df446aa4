"""Find the message ids in the code and keep the Chinese catalogue in step with them.

``python -m engine.catalog`` adds new msgids to ``engine/locale/zh_CN/LC_MESSAGES/liuhen.po`` with an
empty translation, marks those no longer used as obsolete and keeps every existing translation.
``python -m engine.catalog --check`` changes nothing and exits with 1 when a msgid is missing,
untranslated or no longer used, or when the code passes a msgid that is not a literal.

A msgid is the message argument of one of these calls:

- ``msg("...")`` and ``_message("...")``, the second argument of ``translate(locale, "...")``;
- in the command line, ``out("...")``, ``out.error("...")``, ``out.text("...")`` and ``t("...")``.

The argument may be a string literal, a ``+`` of literals, a conditional expression between
literals, or a name bound to module-level string constants (a constant, or the loop variable of
``for key, value in CONSTANT.items()``). Anything else cannot be extracted and is reported.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import itertools
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from engine.i18n import DEFAULT_LOCALE, DOMAIN, LOCALE_DIR

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = ("engine", "api", "diagrams")
CATALOG_PATH = LOCALE_DIR / DEFAULT_LOCALE / "LC_MESSAGES" / f"{DOMAIN}.po"

# Position of the msgid among the positional arguments of each call that takes one.
MSGID_ARGUMENTS = {
    "msg": 0,
    "_message": 0,
    "translate": 1,
    "out": 0,
    "out.error": 0,
    "out.text": 0,
    "t": 0,
}

# The message plumbing passes on a msgid that its own caller wrote, so the extractor checks those callers.
FORWARDING_FUNCTIONS = {"Message.render", "Output.__call__", "Output.text", "Output.error", "_message",
                        "translator.t"}

# Values the command line reads from the database and translates with out.text(row["status"]) or
# out.text(event["kind"]), so they are msgids without appearing as literals in a keyword call.
STATUS_MSGIDS = ("running", "completed", "cancelled", "ready", "claimed",
                 # statuses of control overrides
                 "pending", "approved", "rejected", "used")
EVENT_KIND_MSGIDS = (
    "definition_deployed",
    "definition_published",
    "definition_withdrawn",
    "case_started",
    "task_ready",
    "task_claimed",
    "task_released",
    "task_completed",
    "task_cancelled",
    "gateway_decision",
    "timer_fired",
    "end_event_reached",
    "case_completed",
    "case_cancelled",
    "task_reassigned",
    "step_skipped",
    "data_edited",
    "case_migrated",
    "definition_published",
    "definition_withdrawn",
    "calendar_day_set",
    "clock_started",
    "clock_paused",
    "clock_resumed",
    "clock_restarted",
    "card_raised",
    "supervision_notice_opened",
    "supervision_notice_answered",
    "review_recorded",
    "control_evaluated",
    "correction_notice",
    "override_requested",
    "override_decided",
    "risk_event",
    "checkpoint_reviewed",
    "user_created",
    "user_changed",
    "user_deactivated",
    "user_reactivated",
    "signing_key_rotated",
)
RISK_LEVEL_MSGIDS = ("high", "medium", "low")
DYNAMIC_MSGIDS = STATUS_MSGIDS + EVENT_KIND_MSGIDS + RISK_LEVEL_MSGIDS
# The subscript key that marks a translated database value, and the msgids it may hold.
DYNAMIC_KEYS = {"status": STATUS_MSGIDS, "kind": EVENT_KIND_MSGIDS, "level": RISK_LEVEL_MSGIDS}

HEADER_COMMENT = (
    "# Simplified Chinese messages of liuhen. Each msgid is the English text.\n"
    "# Refresh with `make messages` (python -m engine.catalog), then translate\n"
    "# every empty msgstr and keep each {placeholder} exactly as in the msgid.\n"
    "#"
)


@dataclass(frozen=True, order=True)
class Location:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Problem:
    """A call whose msgid cannot be read from the source."""

    location: Location
    description: str

    def __str__(self) -> str:
        return f"{self.location}: {self.description}"


@dataclass
class Extraction:
    msgids: dict[str, list[Location]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"Extraction({len(self.msgids)} msgids, {len(self.problems)} problems)"

    def add(self, msgid: str, location: Location) -> None:
        self.msgids.setdefault(msgid, []).append(location)


def collect_msgids(paths: Iterable[Path]) -> dict[str, list[Location]]:
    """Map every msgid used in the Python files under ``paths`` to the places that use it."""
    return extract(paths).msgids


def extract(paths: Iterable[Path]) -> Extraction:
    """Collect the msgids under ``paths``, the dynamic ones included, and the calls that hide a msgid."""
    extraction = Extraction()
    for path in _python_files(paths):
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError as exc:
            location = Location(_display_path(path), exc.lineno or 0)
            extraction.problems.append(Problem(location, f"the file cannot be parsed: {exc.msg}"))
            continue
        _MsgidVisitor(_display_path(path), _module_constants(tree), extraction).visit(tree)
    for path in _template_files(paths):
        _extract_template(path, extraction)
    for msgid in DYNAMIC_MSGIDS:
        extraction.msgids.setdefault(msgid, [])
    return extraction


# In Jinja2 templates a msgid is the first argument of t(...), written as a single- or double-quoted literal.
_TEMPLATE_CALL = re.compile(r"""\bt\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')""")


def _template_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.html"))


def _extract_template(path: Path, extraction: Extraction) -> None:
    text = path.read_text(encoding="utf-8")
    for match in _TEMPLATE_CALL.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        extraction.add(match.group(1) if match.group(1) is not None else match.group(2),
                       Location(_display_path(path), line))


def _python_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(path.rglob("*.py"))
        elif path.suffix == ".py":
            yield path


def _display_path(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


ModuleConstant = str | tuple[str, ...] | dict[str, str]


def _module_constants(tree: ast.Module) -> dict[str, ModuleConstant]:
    """Collect the module-level names bound to a string, or to a tuple, list, set or dict of strings."""
    constants: dict[str, ModuleConstant] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue

        strings = _literal_strings(value, {})
        if strings is not None and len(strings) == 1:
            constants[target.id] = strings[0]
        elif isinstance(value, (ast.Tuple, ast.List, ast.Set)):
            items = [_single_string(item) for item in value.elts]
            if items and all(item is not None for item in items):
                constants[target.id] = tuple(item for item in items if item is not None)
        elif isinstance(value, ast.Dict):
            keys = [_single_string(key) if key is not None else None for key in value.keys]
            values = [_single_string(item) for item in value.values]
            if keys and None not in keys and None not in values:
                constants[target.id] = dict(zip(keys, values, strict=True))  # type: ignore[arg-type]
    return constants


def _single_string(node: ast.expr) -> str | None:
    strings = _literal_strings(node, {})
    return strings[0] if strings is not None and len(strings) == 1 else None


def _literal_strings(node: ast.expr, names: Mapping[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """List every string ``node`` can evaluate to, or return None when that is not known from the source."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _literal_strings(node.left, names)
        right = _literal_strings(node.right, names)
        if left is None or right is None:
            return None
        return tuple(a + b for a, b in itertools.product(left, right))
    if isinstance(node, ast.IfExp):
        body = _literal_strings(node.body, names)
        orelse = _literal_strings(node.orelse, names)
        if body is None or orelse is None:
            return None
        return body + orelse
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    return None


class _MsgidVisitor(ast.NodeVisitor):
    def __init__(self, path: str, constants: dict[str, ModuleConstant], extraction: Extraction) -> None:
        self.path = path
        self.constants = constants
        self.extraction = extraction
        self.scope: list[str] = []
        # Names whose possible string values are known: module string constants, then loop variables.
        self.names: dict[str, tuple[str, ...]] = {
            name: (value,) for name, value in constants.items() if isinstance(value, str)
        }

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_scope(node.name, node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._visit_scope(node.name, node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._visit_scope(node.name, node)

    def _visit_scope(self, name: str, node: ast.AST) -> None:
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_For(self, node: ast.For) -> None:
        bindings = self._loop_bindings(node.target, node.iter)
        self.visit(node.iter)
        saved = dict(self.names)
        self.names.update(bindings)
        for statement in node.body:
            self.visit(statement)
        self.names = saved
        for statement in node.orelse:
            self.visit(statement)

    def _loop_bindings(self, target: ast.expr, iterable: ast.expr) -> dict[str, tuple[str, ...]]:
        """Bind the loop variables of ``for x in CONSTANT`` and ``for k, v in CONSTANT.items()``."""
        method = None
        if isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Attribute) and not iterable.args:
            method, iterable = iterable.func.attr, iterable.func.value
        if not isinstance(iterable, ast.Name):
            return {}
        constant = self.constants.get(iterable.id)

        if isinstance(constant, dict):
            if method == "items" and isinstance(target, ast.Tuple) and len(target.elts) == 2:
                key, value = target.elts
                bound = {}
                if isinstance(key, ast.Name):
                    bound[key.id] = tuple(constant)
                if isinstance(value, ast.Name):
                    bound[value.id] = tuple(constant.values())
                return bound
            if isinstance(target, ast.Name) and method in (None, "keys", "values"):
                return {target.id: tuple(constant.values() if method == "values" else constant)}
        if isinstance(constant, tuple) and method is None and isinstance(target, ast.Name):
            return {target.id: constant}
        return {}

    def visit_Call(self, node: ast.Call) -> None:
        keyword = _call_name(node.func)
        if keyword in MSGID_ARGUMENTS:
            self._collect(node, MSGID_ARGUMENTS[keyword], keyword)
        self.generic_visit(node)

    def _collect(self, node: ast.Call, position: int, keyword: str) -> None:
        location = Location(self.path, node.lineno)
        argument = _msgid_argument(node, position)
        if argument is None:
            self._report(location, f"{keyword}() is called without a msgid argument")
            return

        strings = _literal_strings(argument, self.names)
        if strings is not None:
            for msgid in strings:
                self.extraction.add(msgid, location)
            return

        dynamic_key = _subscript_key(argument)
        if dynamic_key in DYNAMIC_KEYS:
            for msgid in DYNAMIC_KEYS[dynamic_key]:
                self.extraction.add(msgid, location)
            return
        if ".".join(self.scope) in FORWARDING_FUNCTIONS:
            return
        self._report(location, f"the msgid of {keyword}() is not a string literal: {ast.unparse(argument)}")

    def _report(self, location: Location, description: str) -> None:
        self.extraction.problems.append(Problem(location, description))


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return None


def _msgid_argument(node: ast.Call, position: int) -> ast.expr | None:
    positional = node.args[:position + 1]
    if any(isinstance(argument, ast.Starred) for argument in positional):
        return None
    if len(node.args) > position:
        return node.args[position]
    return next((keyword.value for keyword in node.keywords if keyword.arg == "msgid"), None)


def _subscript_key(node: ast.expr) -> str | None:
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        key = node.slice.value
        return key if isinstance(key, str) else None
    return None


def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Read the catalogue at ``path``, or start an empty one when it does not exist yet."""
    if path.exists():
        with path.open("rb") as handle:
            return read_po(handle, locale=DEFAULT_LOCALE, domain=DOMAIN)
    now = datetime.now(UTC)
    try:
        version = importlib.metadata.version("liuhen")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return Catalog(locale=DEFAULT_LOCALE, domain=DOMAIN, header_comment=HEADER_COMMENT, project="liuhen",
                   version=version, creation_date=now, revision_date=now, last_translator="liuhen developers",
                   language_team="liuhen developers", fuzzy=False)


def save_catalog(catalog: Catalog, path: Path = CATALOG_PATH) -> None:
    # The file keeps no source locations, because they change with every edit and make merges conflict.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, no_location=True, sort_output=True)


@dataclass
class Update:
    added: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    obsoleted: list[str] = field(default_factory=list)


def update_catalog(catalog: Catalog, msgids: Iterable[str]) -> Update:
    """Add ``msgids`` missing from ``catalog`` and mark the entries not among them as obsolete."""
    used = set(msgids)
    update = Update()

    for msgid in sorted(used):
        if msgid in catalog:
            continue
        previous = catalog.obsolete.pop(msgid, None)
        if previous is not None and previous.string:
            catalog.add(msgid, previous.string, auto_comments=previous.auto_comments,
                        user_comments=previous.user_comments)
            update.restored.append(msgid)
        else:
            catalog.add(msgid, "")
            update.added.append(msgid)

    for message in list(catalog):
        if isinstance(message.id, str) and message.id and message.id not in used:
            catalog.obsolete[message.id] = message
            del catalog[message.id]
            update.obsoleted.append(message.id)
    return update


def catalog_issues(catalog: Catalog, extraction: Extraction) -> list[str]:
    """Describe everything that keeps the catalogue from matching the code, one line each."""
    issues = [f"msgid cannot be extracted: {problem}" for problem in extraction.problems]
    for msgid, locations in sorted(extraction.msgids.items()):
        message = catalog.get(msgid)
        where = ", ".join(str(location) for location in locations[:3]) or "engine.catalog.DYNAMIC_MSGIDS"
        if message is None:
            issues.append(f"missing from the catalogue (run `make messages`): {msgid!r} ({where})")
        elif not message.string or message.fuzzy:
            issues.append(f"untranslated: {msgid!r} ({where})")
    for message in catalog:
        if message.id and message.id not in extraction.msgids:
            issues.append(f"no longer used in the code (run `make messages`): {message.id!r}")
    return issues


def default_sources() -> list[Path]:
    return [ROOT / name for name in SOURCE_DIRS if (ROOT / name).is_dir()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.catalog", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="Only report, without writing the file. Exit with 1 when the catalogue does not "
                        "match the code.")
    args = parser.parse_args(argv)

    extraction = extract(default_sources())
    catalog = load_catalog()
    if args.check:
        issues = catalog_issues(catalog, extraction)
        for issue in issues:
            print(issue)
        print(f"{CATALOG_PATH.relative_to(ROOT)}: {len(extraction.msgids)} msgids, {len(issues)} issues.")
        return 1 if issues else 0

    update = update_catalog(catalog, extraction.msgids)
    save_catalog(catalog)
    for problem in extraction.problems:
        print(f"msgid cannot be extracted: {problem}", file=sys.stderr)
    untranslated = [message.id for message in catalog if message.id and not message.string]
    for msgid in untranslated:
        print(f"untranslated: {msgid!r}")
    print(f"{CATALOG_PATH.relative_to(ROOT)}: {len(extraction.msgids)} msgids; {len(update.added)} added, "
          f"{len(update.restored)} restored from obsolete, {len(update.obsoleted)} marked obsolete, "
          f"{len(untranslated)} untranslated.")
    return 1 if extraction.problems else 0


if __name__ == "__main__":
    sys.exit(main())
