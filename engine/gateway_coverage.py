"""Whether some outgoing condition of a gateway holds for every value the case data can take.

A gateway with no default flow stops a case with an error when none of its conditions holds. The
check evaluates the conditions with the safe evaluator on sample values of the variables they read:

- a boolean field takes True and False, and an enum field its options;
- a number takes every constant the conditions compare it with, the neighbours of each (for whole
  numbers) or a value between each two (for decimals), and one value below and one above all;
- a string or date takes every constant it is compared with and one value equal to none of them;
- an optional field also takes None, the value liuhen stores for a field left empty.

Take conditions that only compare one variable with constants, joined by and/or/not. Each such
comparison has the same truth value throughout each range between two constants, so the samples
cover every value, and a match on every sample proves that one condition always holds. A sample on
which every condition is false is a counterexample whatever the form of the conditions.
"""

from __future__ import annotations

import ast
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from engine.errors import ExpressionError
from engine.expressions import ALLOWED_FUNCTIONS, SafeEnvironment

MAX_SAMPLES = 4096
"""Maximum number of combinations of sample values evaluated for one gateway."""

# Types of form fields whose values are known well enough to call a counterexample certain.
_KNOWN_TYPES = ("string", "text", "boolean", "integer", "decimal", "date", "enum")
OTHER_TEXT = "\u2060other text\u2060"
"""Sample that stands for any text other than the constants of the conditions; a form could submit it."""
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


@dataclass(frozen=True)
class FieldDomain:
    """The type of a form field, its options for an enum, and whether it is required."""

    type: str | None
    options: tuple[str, ...] = ()
    required: bool = False


@dataclass
class Coverage:
    """The outcome of the check on one gateway.

    ``counterexample`` maps each variable to a value on which no condition holds. ``certain`` is
    True when every value in it is one the variable's form field accepts, so the gap is real, not
    an artefact of a guessed type. ``exhaustive`` is True when the samples prove that one condition
    always holds. ``reason`` names why neither was found.
    """

    exhaustive: bool = False
    counterexample: dict[str, Any] | None = None
    certain: bool = False
    reason: str | None = None
    empty_fields: list[str] = field(default_factory=list)
    # The text constants each variable is compared with, which OTHER_TEXT in a counterexample differs from.
    texts: dict[str, tuple[str, ...]] = field(default_factory=dict)


def check_coverage(conditions: list[str], fields: Mapping[str, FieldDomain]) -> Coverage:
    """Check whether one of ``conditions`` holds for every value of the variables they read.

    ``conditions`` must have passed ``check_expression``. ``fields`` describes the form fields of the
    file by name; a variable without a field gets its type from the constants it is compared with.
    """
    trees = [ast.parse(condition.strip(), mode="eval") for condition in conditions]
    variables = sorted(set().union(*(_variables(tree) for tree in trees)))

    samples: dict[str, list[Any]] = {}
    kinds: dict[str, str] = {}
    for name in variables:
        constants = [value for tree in trees for value in _constants_compared(tree, name)]
        domain = fields.get(name)
        kinds[name] = domain.type if domain is not None and domain.type in _KNOWN_TYPES else _guess_type(constants)
        samples[name] = _samples(kinds[name], domain, constants)
    simple = all(_is_simple(tree.body, kinds) for tree in trees)
    combinations = math.prod(len(values) for values in samples.values())
    if combinations > MAX_SAMPLES:
        return Coverage(reason="too_many_combinations")

    environment = SafeEnvironment()
    counterexamples: list[dict[str, Any]] = []
    failed = False
    for values in itertools.product(*(samples[name] for name in variables)):
        assignment = dict(zip(variables, values, strict=True))
        outcome = _any_holds(environment, conditions, assignment)
        if outcome is None:
            # A condition that fails on an empty field stops the case with its own error, not for want of a match.
            failed = failed or None not in values
        elif not outcome:
            counterexamples.append(assignment)

    if counterexamples:
        best = min(counterexamples, key=lambda values: _rank(values, fields))
        certain = _rank(best, fields) == 0
        empty = sorted(name for name, value in best.items() if value is None)
        texts = {name: tuple(value for value in samples[name]
                             if isinstance(value, str) and value not in (OTHER_TEXT, ""))
                 for name in variables}
        return Coverage(counterexample=best, certain=certain, empty_fields=empty, texts=texts)
    if not simple:
        return Coverage(reason="complex_conditions")
    if failed:
        return Coverage(reason="evaluation_failed")
    return Coverage(exhaustive=True)


def _any_holds(environment: SafeEnvironment, conditions: list[str], values: dict[str, Any]) -> bool | None:
    """Return whether a condition holds on ``values`` as the engine evaluates them, or None on an error."""
    for condition in conditions:
        try:
            if environment.evaluate(condition, values):
                return True
        except ExpressionError:
            return None
    return False


def _rank(values: Mapping[str, Any], fields: Mapping[str, FieldDomain]) -> int:
    """Count the values a form could not submit as such: empty ones and those of variables without a known type."""
    rank = 0
    for name, value in values.items():
        domain = fields.get(name)
        if value is None or domain is None or domain.type not in _KNOWN_TYPES:
            rank += 1
    return rank


# Reading the conditions --------------------------------------------------------------------------


def _variables(tree: ast.AST) -> set[str]:
    called = {id(node.func) for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ALLOWED_FUNCTIONS}
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in called}


def _literal(node: ast.AST) -> tuple[bool, Any]:
    """Return (True, value) when ``node`` is a constant or a list, tuple or set of constants."""
    if isinstance(node, ast.Constant):
        return True, node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
        value = node.operand.value
        return True, -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_literal(item) for item in node.elts]
        if all(found for found, _ in items):
            return True, tuple(value for _, value in items)
    return False, None


def _is_simple(node: ast.AST, kinds: Mapping[str, str]) -> bool:
    """Return whether ``node`` joins comparisons of one variable with constants by and, or and not.

    Ordering comparisons of text are not simple, because the samples of text cover only equal and not
    equal. Dates are sampled on both sides of each constant, so their ordering comparisons are simple.
    """
    if isinstance(node, ast.BoolOp):
        return all(_is_simple(value, kinds) for value in node.values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _is_simple(node.operand, kinds)
    if isinstance(node, ast.Name):
        return node.id in kinds
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        names = [operand.id for operand in operands if isinstance(operand, ast.Name)]
        constants = [operand for operand in operands if _literal(operand)[0]]
        if len(names) != 1 or len(names) + len(constants) != len(operands):
            return False
        ordered = any(isinstance(operator, _ORDERING) for operator in node.ops)
        return not (ordered and kinds.get(names[0]) in ("string", "text", "enum"))
    return False


def _constants_compared(tree: ast.AST, name: str) -> list[Any]:
    """List the constants that ``name`` is compared with anywhere in ``tree``, members of collections included."""
    found: list[Any] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        if not any(isinstance(operand, ast.Name) and operand.id == name for operand in operands):
            continue
        for operand in operands:
            is_literal, value = _literal(operand)
            if not is_literal:
                continue
            found.extend(value if isinstance(value, tuple) else (value,))
    return found


# Sample values -----------------------------------------------------------------------------------


def _samples(kind: str, domain: FieldDomain | None, constants: list[Any]) -> list[Any]:
    """Return sample values of a variable of type ``kind`` that stand for every value it can take."""
    if kind == "boolean":
        values: list[Any] = [True, False]
    elif kind == "enum" and domain is not None:
        values = list(domain.options)
    elif kind == "integer":
        values = _integer_samples(_numbers(constants))
    elif kind == "decimal":
        values = _decimal_samples(_numbers(constants))
    elif kind == "date":
        values = _date_samples([value for value in constants if isinstance(value, str)])
    else:
        values = _text_samples([value for value in constants if isinstance(value, str)])
        if domain is None:
            # Data given when the case starts may hold an empty text; a form stores an empty field as None.
            values.append("")
    if domain is None or not domain.required or None in constants:
        values.append(None)
    return list(dict.fromkeys(values))


def _guess_type(constants: list[Any]) -> str:
    if any(isinstance(value, bool) for value in constants) or not constants:
        return "boolean" if all(isinstance(value, bool) or value is None for value in constants) else "text"
    if all(isinstance(value, (int, float)) or value is None for value in constants):
        return "decimal"
    return "text"


def _numbers(constants: list[Any]) -> list[float | int]:
    return [value for value in constants if isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)]


def _integer_samples(numbers: list[float | int]) -> list[Any]:
    # 0 and 1 stand for false and true where the number itself is the condition.
    values: set[int] = {0, 1}
    for number in numbers:
        low, high = math.floor(number), math.ceil(number)
        values.update((low - 1, low, low + 1, high, high + 1))
    return sorted(values)


def _decimal_samples(numbers: list[float | int]) -> list[Any]:
    ordered = sorted(set(numbers)) or [0]
    values: list[float | int] = [ordered[0] - 1, *ordered, ordered[-1] + 1, 0, 1]
    values.extend((low + high) / 2 for low, high in itertools.pairwise(ordered))
    return sorted(set(values))


def _date_samples(constants: list[str]) -> list[Any]:
    values = {"1900-01-01", "2199-12-31"}
    for constant in constants:
        values.add(constant)
        try:
            day = date.fromisoformat(constant)
        except ValueError:
            continue
        values.update(((day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()))
    return sorted(values)


def _text_samples(constants: list[str]) -> list[Any]:
    return [*sorted(set(constants)), OTHER_TEXT]
