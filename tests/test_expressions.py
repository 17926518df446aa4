"""Tests of the safe expression evaluator in engine/expressions.py."""

from __future__ import annotations

import ast
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser import BpmnParser
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.util.task import TaskState

import engine.expressions as expressions
from engine.errors import ExpressionError
from engine.expressions import (
    ALLOWED_FUNCTIONS,
    SafeEnvironment,
    SafeScriptEngine,
    UndefinedVariable,
    check_expression,
    expression_names,
    make_script_engine,
)


def case_data() -> dict[str, Any]:
    return {
        "amount": 150,
        "price": 2.5,
        "name": "张三",
        "status": "approved",
        "items": [3, 1, 2],
        "form": {"dept": "财务科", "scores": [80, 95]},
        "flags": [True, False],
        "note": None,
        "id_number": "110105199001011234",
    }


def evaluate(expression: str, data: dict[str, Any] | None = None) -> Any:
    return SafeEnvironment().evaluate(expression, case_data() if data is None else data)


# Allowed expressions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("amount > 100", True),
        ("amount <= 100", False),
        ("amount == 150", True),
        ("amount != 150", False),
        ("100 < amount < 200", True),
        ("100 < amount < 120", False),
        ("status == 'approved'", True),
        ("note is None", True),
        ("note is not None", False),
        ("price >= 2.5", True),
    ],
)
def test_comparisons(expression: str, expected: bool) -> None:
    assert evaluate(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("amount > 100 and status == 'approved'", True),
        ("amount > 100 and status == 'rejected'", False),
        ("amount < 100 or status == 'approved'", True),
        ("not amount > 100", False),
        ("not (amount < 100 or note is not None)", True),
        # and/or return an operand, as in Python.
        ("note or 'default'", "default"),
        ("name and amount", 150),
    ],
)
def test_boolean_logic(expression: str, expected: Any) -> None:
    assert evaluate(expression) == expected


def test_boolean_logic_short_circuits() -> None:
    assert evaluate("note is None or missing > 1") is True
    assert evaluate("note is not None and missing > 1") is False


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("form['dept']", "财务科"),
        ('form["scores"][1]', 95),
        ("items[0]", 3),
        ("items[-1]", 2),
        ("items[1:]", [1, 2]),
        ("id_number[6:14]", "19900101"),
        ("flags[0]", True),
    ],
)
def test_subscripts(expression: str, expected: Any) -> None:
    assert evaluate(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("status in ['approved', 'closed']", True),
        ("status not in ['approved', 'closed']", False),
        ("2 in items", True),
        ("'dept' in form", True),
        ("'财务' in form['dept']", True),
        ("amount in (1, 2, 3)", False),
        ("status in {'approved'}", True),
    ],
)
def test_membership(expression: str, expected: bool) -> None:
    assert evaluate(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("amount + 1", 151),
        ("amount - 200", -50),
        ("amount * 2", 300),
        ("amount / 4", 37.5),
        ("amount // 4", 37),
        ("amount % 4", 2),
        ("-amount", -150),
        ("+price", 2.5),
        ("name + '同志'", "张三同志"),
        ("items + [4]", [3, 1, 2, 4]),
        ("'ab' * 2", "abab"),
        ("'big' if amount > 100 else 'small'", "big"),
        ("{'total': amount, 'tags': ('a', 'b')}", {"total": 150, "tags": ("a", "b")}),
    ],
)
def test_arithmetic_and_literals(expression: str, expected: Any) -> None:
    assert evaluate(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("len(items)", 3),
        ("min(items)", 1),
        ("max(form['scores'])", 95),
        ("max(1, 2, 3)", 3),
        ("abs(-amount)", 150),
        ("round(price)", 2),
        ("round(2.345, 2)", 2.35),
        ("int('42')", 42),
        ("float('1.5')", 1.5),
        ("str(amount)", "150"),
        ("bool(note)", False),
        ("sum(items)", 6),
        ("sum(items, 10)", 16),
        ("any(flags)", True),
        ("all(flags)", False),
        ("sorted(items)", [1, 2, 3]),
    ],
)
def test_allowed_functions(expression: str, expected: Any) -> None:
    assert evaluate(expression) == expected


def test_allowed_function_names() -> None:
    assert ALLOWED_FUNCTIONS == {
        "len", "min", "max", "abs", "round", "int", "float", "str", "bool", "sum", "any", "all", "sorted",
    }  # fmt: skip


def test_data_objects_are_readable() -> None:
    environment = SafeEnvironment()

    assert environment.evaluate("limit > 10", {}, {"limit": 20}) is True
    # Task data wins over a data object of the same name.
    assert environment.evaluate("limit", {"limit": 1}, {"limit": 20}) == 1


def test_case_data_name_equal_to_function() -> None:
    assert evaluate("len > 1", {"len": 5}) is True
    assert evaluate("len(len)", {"len": "abc"}) == 3


# Failures ----------------------------------------------------------------------------------------


def test_undefined_variable_message() -> None:
    with pytest.raises(UndefinedVariable) as caught:
        evaluate("amount > limit")

    error = caught.value
    assert str(error) == (
        "Expression 'amount > limit' uses the undefined variable 'limit'; submit a value for it in an "
        "earlier step or correct the condition."
    )
    assert error.name == "limit"
    assert error.expression == "amount > limit"
    assert error.context["name"] == "limit"
    assert isinstance(error, ExpressionError)


def test_function_name_alone_is_undefined_variable() -> None:
    # A bare function name is a variable name, so it never evaluates to a function object.
    with pytest.raises(UndefinedVariable) as caught:
        evaluate("max(items, len)")

    assert caught.value.name == "len"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("amount / 0", "ZeroDivisionError: division by zero"),
        ("name > amount", "TypeError: '>' not supported between instances of 'str' and 'int'"),
        ("form['missing']", "KeyError: 'missing'"),
        ("items[10]", "IndexError: list index out of range"),
        ("int('abc')", "ValueError: invalid literal for int() with base 10: 'abc'"),
        ("min([])", "ValueError: min() arg is an empty sequence"),
        ("sum(['a'])", "TypeError: sum() adds only numbers"),
        ("'%s' % amount", "TypeError: the % operator does not format strings in expressions"),
    ],
)
def test_evaluation_failure_names_reason(expression: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression)

    assert str(caught.value) == (
        f"Expression {expression!r} could not be evaluated on the case data: {reason}. "
        "Correct the expression or the values it reads."
    )
    assert caught.value.expression == expression


def test_evaluation_failure_is_chained() -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate("amount / 0")

    assert isinstance(caught.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "The expression is empty; write a condition or value over case data."),
        ("   ", "The expression is empty; write a condition or value over case data."),
        ("amount >", "Expression 'amount >' has invalid syntax (invalid syntax); correct it."),
        ("amount = 1", "Expression 'amount = 1' has invalid syntax (invalid syntax); correct it."),
        ("amount > (1", "Expression 'amount > (1' has invalid syntax ('(' was never closed); correct it."),
    ],
)  # fmt: skip
def test_empty_and_invalid_syntax(expression: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression)

    assert str(caught.value) == message


def test_statements_rejected() -> None:
    for expression in ("import os", "x = 1", "del x", "amount > 1; amount"):
        with pytest.raises(ExpressionError, match="invalid syntax"):
            check_expression(expression)


def test_expression_length_limit() -> None:
    expression = "amount + " * 2000 + "1"

    with pytest.raises(ExpressionError) as caught:
        check_expression(expression, element_id="flow_1")

    assert str(caught.value) == (
        "Expression 'amount + amount + amount + amount + amou'... in element 'flow_1' has 18001 "
        "characters, more than 10000; shorten it."
    )


def test_nesting_limit() -> None:
    shallow = "not " * 90 + "amount"
    deep = "not " * 150 + "amount"

    assert evaluate(shallow) is True
    with pytest.raises(ExpressionError, match="nesting deeper than 100 levels"):
        evaluate(deep)


def test_deep_nesting_beyond_parser() -> None:
    with pytest.raises(ExpressionError, match="invalid syntax"):
        evaluate("-" * 5000 + "1")


# Escape attempts ---------------------------------------------------------------------------------

ESCAPES = [
    ("().__class__.__base__.__subclasses__()", "attribute access '.__subclasses__'"),
    ("__import__('os')", "a call of '__import__'"),
    ("open('/etc/passwd')", "a call of 'open'"),
    ("getattr(x, 'y')", "a call of 'getattr'"),
    ("(lambda: 1)()", "a lambda"),
    ("[x for x in y]", "a comprehension"),
    ("{k: 1 for k in items}", "a comprehension"),
    ("any(x > 1 for x in items)", "a comprehension"),
    ('"a".upper()', "attribute access '.upper'"),
    ("{}.__class__", "attribute access '.__class__'"),
    ("exec('1')", "a call of 'exec'"),
    ("eval('1')", "a call of 'eval'"),
    ("globals()", "a call of 'globals'"),
    ("x.__dict__", "attribute access '.__dict__'"),
    ('"a" * 10 ** 9', "the operator '**'"),
    ("amount << 100000", "the operator '<<'"),
    ("amount | 1", "the operator '|'"),
    ("~amount", "the operator '~'"),
    ("(y := 1)", "an assignment expression ':='"),
    ("f'{name!r:>{10}}'", "an f-string"),
    ("f'{name}'", "an f-string"),
    ("sorted(items, key=len)", "a keyword argument in the call of 'sorted'"),
    ("[*items]", "unpacking with '*'"),
    ("{**form}", "unpacking with '**'"),
    ("__builtins__", "the name '__builtins__'"),
    ("b'abc'", "the bytes literal b'abc'"),
    ("1j", "the complex literal 1j"),
    ("items[0]()", "a call of a computed value"),
    ("len(items)()", "a call of a computed value"),
    ("type(amount)", "a call of 'type'"),
    ("vars()", "a call of 'vars'"),
    ("await amount", "the Python construct Await"),
]


@pytest.mark.parametrize(("expression", "construct"), ESCAPES)
def test_check_expression_rejects_escape(expression: str, construct: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        check_expression(expression, element_id="Gateway_1")

    functions = "abs, all, any, bool, float, int, len, max, min, round, sorted, str, sum"
    assert str(caught.value) == (
        f"Expression {expression!r} in element 'Gateway_1' uses {construct}, which is not allowed. "
        "Use only case data, literals, comparisons, and/or/not, arithmetic, subscripts and the "
        f"functions {functions}."
    )
    assert caught.value.element_id == "Gateway_1"
    assert caught.value.expression == expression


@pytest.mark.parametrize(("expression", "construct"), ESCAPES)
def test_evaluate_rejects_escape(expression: str, construct: str) -> None:
    recorder = Recorder()
    data = {**case_data(), "x": recorder, "y": [recorder], "getattr": recorder, "open": recorder}

    with pytest.raises(ExpressionError) as caught:
        evaluate(expression, data)

    assert construct in str(caught.value)
    assert caught.value.element_id is None
    assert recorder.touched == []


def test_evaluator_rejects_attribute_without_static_check(monkeypatch: pytest.MonkeyPatch) -> None:
    # The simpleeval evaluator has no handler for attributes or comprehensions, so it rejects
    # them even if the static check missed them.
    monkeypatch.setattr(expressions, "_find_violation", lambda tree: None)

    for expression in ("().__class__", '"a".upper()', "[x for x in items]", "(lambda: 1)()", "open('x')"):
        with pytest.raises(ExpressionError, match="could not be evaluated"):
            evaluate(expression)


@pytest.mark.parametrize(
    "expression",
    [
        '"a" * 1000000000',
        "1000000000 * 'a'",
        "[0] * 1000000000",
        "[[0] * 50000] * 50000",
        "name * 60000",
        "sum([[1]] * 3, [])",
        "round(amount, -10000000)",
        "int('9' * 4000) * int('9' * 4000)",
    ],
)
def test_large_values_bounded(expression: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ExpressionError, match="could not be evaluated"):
            evaluate(expression)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 20 * 1024 * 1024


def test_values_at_size_limit_allowed() -> None:
    assert len(evaluate("'a' * 100000")) == 100_000
    assert len(evaluate("[0] * 100000")) == 100_000


# ISO-8601 timer values ---------------------------------------------------------------------------

ISO_TIMER_VALUES = [
    "PT5M",
    "P1D",
    "P2W",
    "P1Y2M3DT4H5M6S",
    "PT0.5S",
    "R3/P1D",
    "R/PT10M",
    "R5/2026-12-31T09:00:00/P1D",
    "R/P1D/2026-12-31T09:00:00+08:00",
    "2026-12-31T09:00:00",
    "2026-12-31T09:00:00+08:00",
    "2026-12-31T09:00:00Z",
    "2026-12-31",
]


@pytest.mark.parametrize("value", ISO_TIMER_VALUES)
def test_iso_timer_value_returned_as_text(value: str) -> None:
    assert evaluate(value) == value
    assert evaluate(f"  {value}\n") == value


@pytest.mark.parametrize("value", ISO_TIMER_VALUES)
def test_check_expression_accepts_iso_timer(value: str) -> None:
    check_expression(value, kind="timer")
    check_expression(repr(value), kind="timer")


def test_iso_duration_name_defined_in_data() -> None:
    assert evaluate("PT5M", {"PT5M": "PT30M"}) == "PT30M"
    assert evaluate("R3/P1D", {"R3": 6, "P1D": 2}) == 3


def test_iso_duration_name_partly_defined() -> None:
    assert evaluate("R3/P1D", {"R3": 6}) == "R3/P1D"


def test_quoted_timer_value_is_string() -> None:
    assert evaluate('"PT5M"', {"PT5M": "PT30M"}) == "PT5M"


def test_timer_value_from_case_data() -> None:
    check_expression("'P' + str(days) + 'D'", kind="timer")
    assert evaluate("'P' + str(days) + 'D'", {"days": 3}) == "P3D"


def test_cron_rejected_by_evaluate() -> None:
    with pytest.raises(ExpressionError) as caught:
        evaluate("0 0 * * *")

    assert str(caught.value) == (
        "Expression '0 0 * * *' looks like a cron schedule, but timers need ISO-8601: write a duration "
        "such as PT5M, a date-time such as 2026-12-31T09:00:00+08:00 or a repeating interval such as R3/P1D."
    )


@pytest.mark.parametrize("value", ["0 0 * * *", "*/5 * * * *", "0 9 * * MON-FRI", "0 0 12 1/1 * ? *"])
def test_cron_rejected_by_check(value: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        check_expression(value, element_id="Timer_1", kind="timer")

    assert "looks like a cron schedule, but timers need ISO-8601" in str(caught.value)
    assert "'Timer_1'" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("'0 0 * * *'", "not an ISO-8601 duration, date, date-time or repeating interval"),
        ("'5 minutes'", "not an ISO-8601 duration, date, date-time or repeating interval"),
        ("2026-13-01", "month must be in 1..12"),
        ("2026-02-30T09:00:00", "day is out of range for month"),
        ("'R/P1D/2026-12-32T00:00:00'", "day is out of range for month"),
    ],
)
def test_invalid_timer_value_rejected(value: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        check_expression(value, element_id="Timer_1", kind="timer")

    assert str(caught.value) == (
        f"Timer value {value!r} in element 'Timer_1' is not valid ISO-8601 ({reason}); write a duration "
        "such as PT5M, a date-time such as 2026-12-31T09:00:00+08:00 or a repeating interval such as R3/P1D."
    )


@pytest.mark.parametrize("value", ["P", "PT", "P1DT", "PT5", "P1W2D", "R3", "R3/P1D/P2D", "T09:00", "2026-01-1"])
def test_non_iso_text_not_returned_as_timer(value: str) -> None:
    with pytest.raises(ExpressionError):
        evaluate(value)


def test_date_without_leading_zeros_is_arithmetic() -> None:
    assert evaluate("2026-1-1") == 2024


def test_condition_kind_does_not_accept_date_time() -> None:
    with pytest.raises(ExpressionError, match="invalid syntax"):
        check_expression("2026-12-31T09:00:00", kind="condition")


# Static check and names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "amount > 100",
        "status in ['approved', 'closed'] and not note",
        "len(form['scores']) >= 2",
        "round(sum(items) / len(items), 1) > 1.5",
        "'big' if amount > 100 else 'small'",
        "id_number[6:10] < '2000'",
        "_private > 1",
    ],
)
def test_check_expression_accepts_valid(expression: str) -> None:
    check_expression(expression, element_id="Flow_1")


def test_check_expression_without_element_id() -> None:
    with pytest.raises(ExpressionError) as caught:
        check_expression("x.y")

    assert str(caught.value).startswith("Expression 'x.y' uses attribute access '.y', which is not allowed.")
    assert caught.value.element_id is None


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("amount > 100", {"amount"}),
        ("len(items) > limit and form['dept'] == dept", {"items", "limit", "form", "dept"}),
        ("len > 1", {"len"}),
        ("max(a, b) if c else min(d)", {"a", "b", "c", "d"}),
        ("1 + 2", set()),
        ("PT5M", {"PT5M"}),
        ("R3/P1D", {"R3", "P1D"}),
        ("2026-12-31", set()),
        ("2026-12-31T09:00:00+08:00", set()),
        ("R/P1D/2026-12-31T09:00:00", set()),
    ],
)
def test_expression_names(expression: str, names: set[str]) -> None:
    assert expression_names(expression) == names


def test_expression_names_rejects_invalid() -> None:
    with pytest.raises(ExpressionError, match="a call of 'open'"):
        expression_names("open(path)")


# Scripts and services ----------------------------------------------------------------------------


def test_execute_rejects_scripts() -> None:
    with pytest.raises(ExpressionError) as caught:
        SafeEnvironment().execute("import os\nos.system('true')", {})

    assert str(caught.value) == (
        "Script tasks are not supported, because liuhen runs no code from BPMN files. Replace the script "
        "task with a user task, or compute the value in a condition."
    )


def test_call_service_rejected() -> None:
    with pytest.raises(ExpressionError) as caught:
        SafeEnvironment().call_service({}, operation_name="http/GetRequest", operation_params={})

    assert str(caught.value) == (
        "Service task operation 'http/GetRequest' cannot run, because liuhen does not call services from "
        "BPMN files. Replace the service task with a user task that records the result."
    )


# Property test -----------------------------------------------------------------------------------


class Recorder:
    """Case-data value that records any attribute lookup or call made on it."""

    def __init__(self) -> None:
        self.touched: list[tuple[str, object]] = []

    def __getattr__(self, name: str) -> Any:
        self.touched.append(("attribute", name))
        raise AttributeError(name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.touched.append(("call", args))
        raise RuntimeError("a case-data value was called")


NAMES = ["amount", "items", "form", "name", "recorder", "missing", "open", "getattr", "len", "__class__"]
FORBIDDEN_CALLEES = ["open", "getattr", "recorder", "eval", "__import__", "type"]
ATTRIBUTES = ["__class__", "__dict__", "upper", "real", "keys", "__globals__"]
ALLOWED_BINARY = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod]
FORBIDDEN_BINARY = [ast.Pow, ast.BitOr, ast.LShift, ast.MatMult]
UNARY_OPERATORS = [ast.USub, ast.UAdd, ast.Not]
COMPARISONS = [ast.Eq, ast.NotEq, ast.Lt, ast.GtE, ast.In, ast.NotIn, ast.Is]
# Allowed constructs come up three times as often as forbidden ones. An expression with one forbidden
# construct is rejected as a whole, so a grammar full of them would rarely evaluate anything.
ALLOWED_KINDS = ["binary", "unary", "boolean", "compare", "conditional", "subscript", "list", "dict", "call"]
FORBIDDEN_KINDS = [
    "operator",
    "invert",
    "attribute",
    "forbidden call",
    "computed call",
    "keyword",
    "lambda",
    "comprehension",
]
COMPOUND_KINDS = ALLOWED_KINDS * 3 + FORBIDDEN_KINDS


def name_node(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def call_node(name: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(name_node(name), args, [])


names = st.sampled_from(NAMES).map(name_node)
constants = st.one_of(
    st.integers(-1000, 1000),
    st.sampled_from([0.5, -2.0, 1e300, "", "a", "张", "k", "r", True, False, None, *ATTRIBUTES]),
).map(ast.Constant)
arguments = st.lists(st.one_of(names, constants), max_size=2)
leaves = st.one_of(
    names,
    names,
    constants,
    st.builds(lambda value, attr: ast.Attribute(value, attr, ast.Load()), names, st.sampled_from(ATTRIBUTES)),
    st.builds(call_node, st.sampled_from(sorted(ALLOWED_FUNCTIONS)), arguments),
    st.builds(call_node, st.sampled_from(FORBIDDEN_CALLEES), arguments),
)


@st.composite
def expression_trees(draw: st.DrawFn, depth: int = 0) -> ast.expr:
    """Draw a syntax tree of allowed and forbidden constructs over the names and literals above."""
    if depth >= 4 or draw(st.booleans()):
        return draw(leaves)

    def child() -> ast.expr:
        return draw(expression_trees(depth + 1))

    kind = draw(st.sampled_from(COMPOUND_KINDS))
    if kind == "binary":
        return ast.BinOp(child(), draw(st.sampled_from(ALLOWED_BINARY))(), child())
    if kind == "unary":
        return ast.UnaryOp(draw(st.sampled_from(UNARY_OPERATORS))(), child())
    if kind == "boolean":
        return ast.BoolOp(draw(st.sampled_from([ast.And, ast.Or]))(), [child(), child()])
    if kind == "compare":
        return ast.Compare(child(), [draw(st.sampled_from(COMPARISONS))()], [child()])
    if kind == "conditional":
        return ast.IfExp(child(), child(), child())
    if kind == "subscript":
        return ast.Subscript(child(), child(), ast.Load())
    if kind == "list":
        return ast.List([child() for _ in range(draw(st.integers(0, 3)))], ast.Load())
    if kind == "dict":
        return ast.Dict([child()], [child()])
    if kind == "call":
        return call_node(draw(st.sampled_from(sorted(ALLOWED_FUNCTIONS))), [child()])
    if kind == "operator":
        return ast.BinOp(child(), draw(st.sampled_from(FORBIDDEN_BINARY))(), child())
    if kind == "invert":
        return ast.UnaryOp(ast.Invert(), child())
    if kind == "attribute":
        return ast.Attribute(child(), draw(st.sampled_from(ATTRIBUTES)), ast.Load())
    if kind == "forbidden call":
        return call_node(draw(st.sampled_from(FORBIDDEN_CALLEES)), [child(), child()])
    if kind == "computed call":
        return ast.Call(child(), [child()], [])
    if kind == "keyword":
        return ast.Call(name_node("sorted"), [child()], [ast.keyword("key", child())])
    if kind == "lambda":
        no_arguments = ast.arguments(
            posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None, defaults=[]
        )
        return ast.Lambda(no_arguments, child())
    comprehension = ast.comprehension(ast.Name("v", ast.Store()), child(), [], 0)
    return ast.ListComp(child(), [comprehension])


expressions_strategy = expression_trees().map(lambda node: ast.unparse(ast.Expression(node)))


def built_from_data(value: Any, data_values: list[Any]) -> bool:
    """Return whether ``value`` consists of plain literals and case-data values only."""
    if any(value is data_value for data_value in data_values):
        return True
    if value is None or type(value) in (bool, int, float, str):
        return True
    if type(value) in (list, tuple, set, frozenset):
        return all(built_from_data(item, data_values) for item in value)
    if type(value) is dict:
        return all(
            built_from_data(key, data_values) and built_from_data(item, data_values) for key, item in value.items()
        )
    return False


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions_strategy)
def test_random_expressions_stay_inside_case_data(expression: str) -> None:
    recorder = Recorder()
    items = [1, 2, recorder]
    form = {"k": "v", "r": recorder}
    data = {
        "amount": 150,
        "items": items,
        "form": form,
        "name": "张三",
        "recorder": recorder,
        "open": recorder,
        "getattr": recorder,
    }
    data_values = [*data.values(), *items, *form.values()]

    try:
        check_expression(expression)
    except ExpressionError:
        statically_rejected = True
    else:
        statically_rejected = False

    try:
        result = SafeEnvironment().evaluate(expression, data)
    except ExpressionError:
        pass
    else:
        assert not statically_rejected
        assert built_from_data(result, data_values)

    assert recorder.touched == []


# BPMN end to end ---------------------------------------------------------------------------------

BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="Definitions_1" targetNamespace="http://example.org/liuhen-test">
  <bpmn:process id="Approval" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"/>
    <bpmn:sequenceFlow id="Flow_start" sourceRef="StartEvent_1" targetRef="Enter_amount"/>
    <bpmn:userTask id="Enter_amount" name="Enter amount"/>
    <bpmn:sequenceFlow id="Flow_enter" sourceRef="Enter_amount" targetRef="Decide"/>
    <bpmn:exclusiveGateway id="Decide" default="Flow_small"/>
    <bpmn:sequenceFlow id="Flow_big" sourceRef="Decide" targetRef="End_big">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_small" sourceRef="Decide" targetRef="End_small"/>
    <bpmn:endEvent id="End_big"/>
    <bpmn:endEvent id="End_small"/>
  </bpmn:process>
</bpmn:definitions>
"""


def start_workflow(condition: str, engine: PythonScriptEngine | None = None) -> BpmnWorkflow:
    parser = BpmnParser()
    parser.add_bpmn_str(BPMN.format(condition=condition).encode())
    workflow = BpmnWorkflow(parser.get_spec("Approval"), script_engine=engine or make_script_engine())
    workflow.do_engine_steps()
    return workflow


def complete_enter_amount(workflow: BpmnWorkflow, amount: int) -> None:
    [task] = workflow.get_tasks(state=TaskState.READY)
    assert task.task_spec.bpmn_id == "Enter_amount"
    task.data["amount"] = amount
    task.run()
    workflow.do_engine_steps()


def completed_end_events(workflow: BpmnWorkflow) -> list[str]:
    return [
        task.task_spec.bpmn_id
        for task in workflow.get_tasks(state=TaskState.COMPLETED)
        if task.task_spec.bpmn_id in ("End_big", "End_small")
    ]


@pytest.mark.parametrize(("amount", "end_event"), [(150, "End_big"), (100, "End_small"), (0, "End_small")])
def test_gateway_condition_selects_branch(amount: int, end_event: str) -> None:
    workflow = start_workflow("amount &gt; 100")

    complete_enter_amount(workflow, amount)

    assert workflow.is_completed()
    assert completed_end_events(workflow) == [end_event]


def test_gateway_condition_after_restore() -> None:
    workflow = start_workflow("amount &gt; 100")
    serializer = BpmnWorkflowSerializer()

    restored = serializer.deserialize_json(serializer.serialize_json(workflow))
    # SpiffWorkflow 3.2 gives a restored workflow its default engine, which runs eval().
    assert not isinstance(restored.script_engine, SafeScriptEngine)
    restored.script_engine = make_script_engine()
    complete_enter_amount(restored, 150)

    assert completed_end_events(restored) == ["End_big"]


def test_gateway_escape_raises_expression_error() -> None:
    workflow = start_workflow("__import__('os')")

    with pytest.raises(ExpressionError) as caught:
        complete_enter_amount(workflow, 150)

    assert "a call of '__import__'" in str(caught.value)
    assert caught.value.element_id == "Decide"
    assert caught.value.context["element_id"] == "Decide"
    [gateway] = [task for task in workflow.get_tasks() if task.task_spec.bpmn_id == "Decide"]
    assert gateway.state == TaskState.ERROR


def test_gateway_undefined_variable_raises() -> None:
    workflow = start_workflow("limit &gt; 100")

    with pytest.raises(UndefinedVariable) as caught:
        complete_enter_amount(workflow, 150)

    assert caught.value.name == "limit"
    assert caught.value.element_id == "Decide"


def test_plain_engine_wraps_expression_error() -> None:
    # SafeScriptEngine exists because SpiffWorkflow's own engine wraps the error in WorkflowTaskException.
    workflow = start_workflow("limit &gt; 100", PythonScriptEngine(environment=SafeEnvironment()))

    with pytest.raises(WorkflowTaskException) as caught:
        complete_enter_amount(workflow, 150)

    assert caught.value.error_type == "UndefinedVariable"
    assert isinstance(caught.value.__context__, UndefinedVariable)


SCRIPT_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    id="Definitions_1" targetNamespace="http://example.org/liuhen-test">
  <bpmn:process id="Scripted" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"/>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Run_script"/>
    <bpmn:scriptTask id="Run_script"><bpmn:script>import os</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Run_script" targetRef="EndEvent_1"/>
    <bpmn:endEvent id="EndEvent_1"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_script_task_raises() -> None:
    parser = BpmnParser()
    parser.add_bpmn_str(SCRIPT_BPMN.encode())
    workflow = BpmnWorkflow(parser.get_spec("Scripted"), script_engine=make_script_engine())

    with pytest.raises(ExpressionError, match="Script tasks are not supported") as caught:
        workflow.do_engine_steps()

    assert caught.value.element_id == "Run_script"
    assert caught.value.expression == "import os"


TIMER_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    id="Definitions_1" targetNamespace="http://example.org/liuhen-test">
  <bpmn:process id="Waiting" isExecutable="true">
    <bpmn:startEvent id="StartEvent_1"/>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Wait"/>
    <bpmn:intermediateCatchEvent id="Wait">
      <bpmn:timerEventDefinition>
        <bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT5M</bpmn:timeDuration>
      </bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Wait" targetRef="EndEvent_1"/>
    <bpmn:endEvent id="EndEvent_1"/>
  </bpmn:process>
</bpmn:definitions>
"""


def test_bare_timer_duration_in_bpmn() -> None:
    parser = BpmnParser()
    parser.add_bpmn_str(TIMER_BPMN.encode())
    workflow = BpmnWorkflow(parser.get_spec("Waiting"), script_engine=make_script_engine())

    before = datetime.now(UTC)
    workflow.do_engine_steps()
    workflow.refresh_waiting_tasks()
    after = datetime.now(UTC)

    [event] = workflow.waiting_events()
    due = datetime.fromisoformat(event.value)
    assert event.event_type == "DurationTimerEventDefinition"
    assert before + timedelta(minutes=5) <= due <= after + timedelta(minutes=5)
    assert not workflow.is_completed()
