"""Generated expressions either compute a plain value from case data or raise the evaluator's own error.

The generator mixes the constructs the evaluator allows with the ones it must reject: attribute
access, dunder names, calls of builtins, lambdas, comprehensions, f-strings, starred arguments,
assignment expressions, imports, huge numbers and repetitions, deep nesting. Whatever comes out, the
only exception is ExpressionError, the result is built of JSON-like values and numbers, the case data
is unchanged, and the evaluation stays within a time and memory budget.
"""

from __future__ import annotations

import copy
import math
import time
import tracemalloc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from engine.errors import ExpressionError
from engine.expressions import MAX_VALUE_SIZE, SafeEnvironment

# Generous for a loaded 2-core machine; an escape such as a huge power takes minutes or never ends.
TIME_BUDGET_SECONDS = 5.0
MEMORY_BUDGET_BYTES = 64 * 1024 * 1024
PLAIN_SCALARS = (type(None), bool, int, float, str)
PLAIN_CONTAINERS = (list, tuple, dict, set, frozenset)

CASE_DATA: dict[str, Any] = {
    "amount": 150,
    "price": 2.5,
    "name": "张三",
    "items": [3, 1, 2],
    "form": {"dept": "财务科", "scores": [80, 95]},
    "flag": True,
    "empty": None,
    "big": 2**4000,
    "text": "x" * 30_000,
}

NAMES = ["amount", "price", "name", "items", "form", "flag", "empty", "big", "text", "missing",
         "__class__", "__builtins__", "__import__", "__globals__", "_private", "self", "os", "sys"]
ATTRIBUTES = ["__class__", "__dict__", "__globals__", "__subclasses__", "__bases__", "__mro__", "__code__",
              "__init__", "__getattribute__", "mro", "format", "upper", "keys", "append", "gi_frame", "f_back",
              "real", "denominator"]
FUNCTIONS = ["len", "str", "int", "float", "sorted", "sum", "max", "min", "abs", "round", "any", "all", "bool",
             "eval", "exec", "open", "getattr", "setattr", "type", "vars", "globals", "locals", "dir", "compile",
             "__import__", "input", "print", "object", "range", "list", "dict", "chr", "ord", "pow", "repr",
             "format", "iter", "next", "breakpoint", "memoryview", "bytearray"]
BINARY = ["+", "-", "*", "/", "//", "%", "**", "<<", ">>", "&", "|", "^", "@", "and", "or", "==", "!=", "<",
          ">=", "in", "not in", "is", "is not"]
# Whole expressions known to open a way out of the case data in unguarded evaluators.
ESCAPES = [
    "().__class__.__bases__[0].__subclasses__()",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen']",
    "__import__('os').system('true')",
    "import os",
    "exec('x = 1')",
    "eval('1 + 1')",
    "open('/etc/passwd').read()",
    "(lambda: 0).__globals__",
    "(lambda f: f(f))(lambda f: f(f))",
    "globals()['__builtins__']",
    "type(name)",
    "getattr(name, 'upper')()",
    "(x := 1)",
    "f'{name.__class__}'",
    "f'{amount!r:>{10**9}}'",
    "'{0.__class__}'.format(name)",
    "'%s' % name",
    "[*items]",
    "{**form}",
    "sorted(items, key=len)",
    "str.upper(name)",
    "(i for i in items).gi_frame",
    "yield 1",
    "await amount",
    "name.__class__.__mro__[-1].__subclasses__()",
    "items.__class__.__init__.__globals__",
    "max.__self__",
    "len.__self__.__import__('os')",
    "__builtins__",
    "__import__",
]
# Expressions that try to take unbounded time or memory.
RESOURCE_ATTACKS = [
    "9 ** 9 ** 9",
    "2 ** 100000",
    "1 << 100000",
    "'a' * 1000000000",
    "[0] * 1000000000",
    "[[0] * 100000] * 100000",
    "text * 1000",
    "text + text + text + text",
    "big * big",
    "big * big * big * big",
    "int('9' * 100000)",
    "str(big * 10000)",
    "str([0] * 100000)",
    "len(str(sorted(str(sorted(str([0] * 30000))))))",
    "sorted(str(sorted(str(sorted(str(items * 10000))))))",
    "sum([[1]] * 1000, [])",
    "round(1, -10000000)",
    "max(range(1000000000))",
    "{1: [0] * 100000, 2: [0] * 100000}",
    "(" * 5000 + "1" + ")" * 5000,
    "[" * 5000 + "]" * 5000,
    "-" * 9000 + "1",
    "not " * 2400 + "flag",
    "1 + " * 3000 + "1",
    "items" + "[0]" * 3000,
    "amount" * 3000,
    "x" * 20000,
    "'" + "a" * 9990 + "'",
]


def _plain(value: Any, depth: int = 0) -> bool:
    """Return whether ``value`` is built only of None, booleans, numbers, strings and containers of them."""
    if depth > 200:
        return False
    if isinstance(value, PLAIN_SCALARS):
        return True
    if isinstance(value, dict):
        return all(_plain(key, depth + 1) and _plain(item, depth + 1) for key, item in value.items())
    if isinstance(value, PLAIN_CONTAINERS):
        return all(_plain(item, depth + 1) for item in value)
    return False


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return len(value) + sum(_size(key) + _size(item) for key, item in value.items())
    if isinstance(value, PLAIN_CONTAINERS):
        return len(value) + sum(_size(item) for item in value)
    return 0


def evaluate_within_budget(expression: str, data: dict[str, Any]) -> tuple[Any, ExpressionError | None]:
    """Evaluate ``expression``; return the value or the ExpressionError, and fail on anything else or overrun."""
    before = copy.deepcopy(data)
    started = time.perf_counter()
    try:
        value, error = SafeEnvironment().evaluate(expression, data), None
    except ExpressionError as exc:
        value, error = None, exc
    elapsed = time.perf_counter() - started

    assert elapsed < TIME_BUDGET_SECONDS, f"{expression[:80]!r} took {elapsed:.1f} s"
    assert data == before, f"{expression[:80]!r} changed the case data"
    if error is None:
        assert _plain(value), f"{expression[:80]!r} returned {type(value).__name__}, which is not case data"
        # The evaluator caps what it builds, but a name may bring in a value as large as the case data.
        assert _size(value) <= max(MAX_VALUE_SIZE, _size(data)) * 2
        if isinstance(value, int):
            assert value.bit_length() <= 4 * 4096 + 64
    return value, error


# Generated expressions.

def _literal() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.sampled_from(["0", "1", "-1", "10**30", "1e308", "1e-308", "0.0", "float('nan')", "float('inf')",
                         "True", "False", "None", "''", "'a'", "'张'", "()", "[]", "{}", "[1, 2]", "{'k': 1}"]),
        st.text(alphabet="ab张'\"\\{}", max_size=6).map(repr),
    )


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(children, children)
    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "+", "not ", "~"]), children).map(lambda t: f"({t[0]}{t[1]})"),
        st.tuples(st.sampled_from(FUNCTIONS), st.lists(children, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(children, st.sampled_from(ATTRIBUTES)).map(lambda t: f"({t[0]}).{t[1]}"),
        pair.map(lambda t: f"({t[0]})[{t[1]}]"),
        pair.map(lambda t: f"({t[0]})[{t[1]}:]"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.lists(children, max_size=3).map(lambda items: f"[{', '.join(items)}]"),
        st.lists(children, max_size=3).map(lambda items: f"({', '.join(items)},)"),
        pair.map(lambda t: f"{{{t[0]}: {t[1]}}}"),
        children.map(lambda child: f"(lambda x: {child})"),
        children.map(lambda child: f"(lambda: {child})()"),
        children.map(lambda child: f"[x for x in {child}]"),
        children.map(lambda child: f"{{x: x for x in {child}}}"),
        children.map(lambda child: f"(x for x in {child})"),
        children.map(lambda child: f"f'{{{child}}}'"),
        children.map(lambda child: f"[*{child}]"),
        children.map(lambda child: f"{{**{child}}}"),
        children.map(lambda child: f"(y := {child})"),
        children.map(lambda child: f"sorted({child}, key=str)"),
        children.map(lambda child: f"{child} * 100000"),
        children.map(lambda child: f"str({child})"),
    )


EXPRESSIONS = st.recursive(st.one_of(st.sampled_from(NAMES), _literal()), _extend, max_leaves=10)


@seed(20261205)
@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(EXPRESSIONS)
def test_generated_expressions_stay_in_case_data(expression: str) -> None:
    evaluate_within_budget(expression, CASE_DATA)


@seed(20261205)
@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_is_value_or_error(expression: str) -> None:
    evaluate_within_budget(expression, CASE_DATA)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=5), children, max_size=4)),
    max_leaves=20,
)


@seed(20261205)
@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(NAMES[:10]), JSON_VALUES, max_size=6), EXPRESSIONS)
def test_any_case_data_is_left_unchanged(data: dict[str, Any], expression: str) -> None:
    evaluate_within_budget(expression, data)


@pytest.mark.parametrize("expression", ESCAPES)
def test_known_escapes_are_rejected(expression: str) -> None:
    value, error = evaluate_within_budget(expression, CASE_DATA)

    assert error is not None, f"{expression!r} evaluated to {value!r}"


@pytest.mark.parametrize("expression", RESOURCE_ATTACKS, ids=[attack[:40] for attack in RESOURCE_ATTACKS])
def test_resource_attacks_are_bounded(expression: str) -> None:
    tracemalloc.start()
    try:
        evaluate_within_budget(expression, CASE_DATA)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < MEMORY_BUDGET_BYTES, f"{expression[:60]!r} allocated {peak / 2**20:.0f} MiB"


def test_nested_growth_is_rejected() -> None:
    # Each str(sorted(...)) multiplies the size by five, so six levels would build a string of 47 million
    # characters and twelve levels one of a million times more.
    expression = "len(" + "str(sorted(" * 6 + "str([0] * 1000)" + "))" * 6 + ")"

    tracemalloc.start()
    try:
        _value, error = evaluate_within_budget(expression, CASE_DATA)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < MEMORY_BUDGET_BYTES
    assert error is not None
    assert "more than 100000 characters or elements" in error.render("en")


def test_allowed_expression_reads_case_data() -> None:
    value, error = evaluate_within_budget("sum(items) * amount + len(form['scores']) if flag else 0", CASE_DATA)

    assert error is None
    assert value == 902


def test_float_results_stay_numbers() -> None:
    value, error = evaluate_within_budget("price * 1e308 * 10", CASE_DATA)

    assert error is None
    assert math.isinf(value)
