"""Safe evaluation of BPMN expressions over case data.

SpiffWorkflow's default ``PythonScriptEngine`` runs conditions, timer values and scripts with
``eval``/``exec``, so an uploaded BPMN file could run any Python. Here an expression may only read
case data: literals, names of case-data values, comparisons, ``and``/``or``/``not``, arithmetic
(``+ - * / // %``), subscripts and slices, ``a if c else b`` and the functions in
``ALLOWED_FUNCTIONS``. Every expression passes a static check of its syntax tree before
``simpleeval`` evaluates it, and the check is also available at deploy time as
``check_expression``. Script tasks and service task calls always raise ``ExpressionError``.

Timer values written by other BPMN tools are often bare ISO-8601 text (``PT5M``, ``R3/P1D``,
``2026-12-31T09:00:00+08:00``), which is not a valid Python expression or reads an undefined name.
Such text is returned as a string unless it reads case-data names that are all defined.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from simpleeval import EvalWithCompoundTypes
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine.errors import ExpressionError
from engine.i18n import Message, msg

if TYPE_CHECKING:
    from SpiffWorkflow.task import Task

MAX_EXPRESSION_LENGTH = 10_000
"""Maximum length of an expression, in characters."""

MAX_NESTING = 100
"""Maximum nesting depth of an expression's syntax tree. It keeps the recursive check and evaluation
far from Python's recursion limit."""

MAX_VALUE_SIZE = 100_000
"""Maximum number of characters plus container elements, nested ones included, in a string, list,
tuple, set or dict that an expression builds."""

MAX_INTEGER_BITS = 4_096
"""Maximum size of a product of two integers, in bits."""

MAX_ROUND_DIGITS = 20
"""Maximum absolute ``ndigits`` for ``round``, because ``round(1, -10**7)`` takes seconds in CPython 3.11."""


class UndefinedVariable(ExpressionError):
    """Expression error for a name that the case data does not contain, which is kept in ``name``."""

    def __init__(self, message: Message, *, expression: str, name: str, element_id: str | None = None) -> None:
        super().__init__(message, expression=expression, element_id=element_id)
        self.name = name
        self.context["name"] = name


# Allowed functions ----------------------------------------------------------------------------


def _round(number: Any, ndigits: int | None = None) -> Any:
    if ndigits is not None and abs(ndigits) > MAX_ROUND_DIGITS:
        raise ValueError(f"round() accepts at most {MAX_ROUND_DIGITS} digits, not {ndigits}")
    return round(number, ndigits)


def _sum(values: Any, start: Any = 0) -> Any:
    # Only numbers, because sum() over lists concatenates them and can build a value of any size.
    items = [start, *values]
    if not all(isinstance(item, (int, float)) for item in items):
        raise TypeError("sum() adds only numbers")
    return sum(items)


_FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "abs": abs,
    "all": all,
    "any": any,
    "bool": bool,
    "float": float,
    "int": int,
    "len": len,
    "max": max,
    "min": min,
    "round": _round,
    "sorted": sorted,
    "str": str,
    "sum": _sum,
}

ALLOWED_FUNCTIONS: frozenset[str] = frozenset(_FUNCTIONS)
"""Names of the functions an expression may call."""


# Operators with size limits -------------------------------------------------------------------


def _value_size(value: Any) -> int:
    """Count characters and container elements of ``value``, stopping soon after MAX_VALUE_SIZE."""
    size = 0
    pending = [value]
    while pending and size <= MAX_VALUE_SIZE:
        item = pending.pop()
        if isinstance(item, str):
            size += len(item)
        elif isinstance(item, dict):
            size += len(item)
            if size <= MAX_VALUE_SIZE:
                pending.extend(item.keys())
                pending.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            size += len(item)
            if size <= MAX_VALUE_SIZE:
                pending.extend(item)
    return size


def _check_size(size: int) -> None:
    if size > MAX_VALUE_SIZE:
        raise ValueError(f"the result would contain more than {MAX_VALUE_SIZE} characters or elements")


def _add(left: Any, right: Any) -> Any:
    result = left + right
    _check_size(_value_size(result))
    return result


def _multiply(left: Any, right: Any) -> Any:
    # Check before multiplying, because "a" * 1000000000 allocates the whole string at once.
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INTEGER_BITS:
            raise ValueError(f"the product would have more than {MAX_INTEGER_BITS} bits")
    elif isinstance(right, int):
        _check_size(_value_size(left) * right)
    elif isinstance(left, int):
        _check_size(_value_size(right) * left)
    return left * right


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        raise TypeError("the % operator does not format strings in expressions")
    return left % right


_OPERATORS: Mapping[type[ast.AST], Callable[..., Any]] = {
    ast.Add: _add,
    ast.Sub: lambda left, right: left - right,
    ast.Mult: _multiply,
    ast.Div: lambda left, right: left / right,
    ast.FloorDiv: lambda left, right: left // right,
    ast.Mod: _modulo,
    ast.USub: lambda operand: -operand,
    ast.UAdd: lambda operand: +operand,
    ast.Not: lambda operand: not operand,
    ast.Eq: lambda left, right: left == right,
    ast.NotEq: lambda left, right: left != right,
    ast.Lt: lambda left, right: left < right,
    ast.LtE: lambda left, right: left <= right,
    ast.Gt: lambda left, right: left > right,
    ast.GtE: lambda left, right: left >= right,
    ast.In: lambda left, right: left in right,
    ast.NotIn: lambda left, right: left not in right,
    ast.Is: lambda left, right: left is right,
    ast.IsNot: lambda left, right: left is not right,
}


# ISO-8601 timer literals ----------------------------------------------------------------------

_NUMBER = r"\d+(?:[.,]\d+)?"
_DURATION = re.compile(
    rf"P(?:{_NUMBER}W|(?=\d|T\d)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}D)?"
    rf"(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?)"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_REPETITIONS = re.compile(r"R\d*")
_CRON_FIRST_FIELD = re.compile(r"[0-9*?/,\-]+")
_CRON_FIELD = re.compile(r"[0-9*?/,\-LW#]+|[A-Za-z]{3}(?:[-,][A-Za-z]{3})*")


def _is_duration(text: str) -> bool:
    return _DURATION.fullmatch(text) is not None


def _is_point_in_time(text: str) -> bool:
    return _DATE.fullmatch(text) is not None or _DATE_TIME.fullmatch(text) is not None


def _is_iso8601_timer(text: str) -> bool:
    """Return whether ``text`` has the shape of an ISO-8601 duration, date, date-time or interval.

    Only the shape is checked here. ``_iso8601_problem`` checks calendar values such as month 13.
    """
    if not text.startswith("R"):
        return _is_duration(text) or _is_point_in_time(text)

    repetitions, _, interval = text.partition("/")
    parts = interval.split("/")
    if _REPETITIONS.fullmatch(repetitions) is None or len(parts) > 2:
        return False
    if len(parts) == 1:
        return _is_duration(parts[0])
    start, end = parts
    return (_is_point_in_time(start) and _is_duration(end)) or (_is_duration(start) and _is_point_in_time(end))


def _iso8601_problem(text: str) -> str | None:
    """Return why the dates in an ISO-8601-shaped ``text`` are invalid, or None if they are valid."""
    for part in text.split("/"):
        try:
            if _DATE.fullmatch(part):
                date.fromisoformat(part)
            elif _DATE_TIME.fullmatch(part):
                datetime.fromisoformat(part.replace(",", "."))
        except ValueError as error:
            return str(error)
    return None


def _looks_like_cron(text: str) -> bool:
    fields = text.split()
    return (
        5 <= len(fields) <= 7
        and _CRON_FIRST_FIELD.fullmatch(fields[0]) is not None
        and all(_CRON_FIELD.fullmatch(field) for field in fields)
    )


def _reads_defined_case_data(text: str, names: Mapping[str, Any]) -> bool:
    """Return whether ``text`` parses as an expression that reads only defined case-data names.

    ``PT5M`` is a Python name, so it is the case-data value when one exists. ``2026-12-31`` reads no
    name and would be integer subtraction, so it stays a date.
    """
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return False
    used = _names_read(tree)
    return bool(used) and used <= names.keys()


# Static check ---------------------------------------------------------------------------------

_OPERATOR_SYMBOLS: Mapping[type[ast.AST], str] = {
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
}

_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

# Nodes that need no check of their own. Operators are checked at their BinOp or UnaryOp node, and
# every comparison operator is allowed.
_PLAIN_NODES = (
    ast.Expression,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.Slice,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.expr_context,
    ast.boolop,
    ast.cmpop,
)


def _find_violation(node: ast.AST, depth: int = 0) -> str | None:
    """Describe the first construct under ``node`` that the evaluator does not run, or return None."""
    if depth > MAX_NESTING:
        return f"nesting deeper than {MAX_NESTING} levels"

    construct = _describe_construct(node)
    if construct is not None:
        return construct

    for child in ast.iter_child_nodes(node):
        construct = _find_violation(child, depth + 1)
        if construct is not None:
            return construct
    return None


def _describe_construct(node: ast.AST) -> str | None:
    """Describe ``node`` itself if the evaluator does not run it, without looking at its children."""
    if isinstance(node, _PLAIN_NODES):
        return None

    # Node types that are allowed with restrictions.
    if isinstance(node, ast.Constant):
        if node.value is None or isinstance(node.value, (bool, int, float, str)):
            return None
        return f"the {type(node.value).__name__} literal {ast.unparse(node)}"
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}" if node.id.startswith("__") else None
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        symbol = _OPERATOR_SYMBOLS.get(type(node.op))
        return None if symbol is None else f"the operator {symbol!r}"
    if isinstance(node, (ast.operator, ast.unaryop)):
        return None
    if isinstance(node, ast.Dict):
        return "unpacking with '**'" if None in node.keys else None
    if isinstance(node, ast.Call):
        return _describe_call(node)

    # Every remaining node type is rejected.
    if isinstance(node, ast.Attribute):
        return f"attribute access '.{node.attr}'"
    if isinstance(node, ast.Lambda):
        return "a lambda"
    if isinstance(node, _COMPREHENSIONS):
        return "a comprehension"
    if isinstance(node, ast.NamedExpr):
        return "an assignment expression ':='"
    if isinstance(node, ast.JoinedStr):
        return "an f-string"
    if isinstance(node, ast.Starred):
        return "unpacking with '*'"
    return f"the Python construct {type(node).__name__}"


def _describe_call(node: ast.Call) -> str | None:
    if not isinstance(node.func, ast.Name):
        # Report what the callee is, such as a lambda or an attribute.
        return _describe_construct(node.func) or "a call of a computed value"
    if node.func.id not in ALLOWED_FUNCTIONS:
        return f"a call of {node.func.id!r}"
    if node.keywords:
        return f"a keyword argument in the call of {node.func.id!r}"
    return None


def _names_read(tree: ast.AST) -> set[str]:
    """Collect the case-data names in ``tree``, which are all names except calls of allowed functions."""
    called = {
        id(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ALLOWED_FUNCTIONS
    }
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in called}


def _static_error(
    element_id: str | None, expression: str, without_element: Message, with_element: Message
) -> ExpressionError:
    message = without_element if element_id is None else with_element
    return ExpressionError(message, expression=expression, element_id=element_id)


def _parse_checked(text: str, element_id: str | None) -> ast.Expression:
    """Parse ``text`` and raise ExpressionError unless the evaluator runs every construct in it."""
    if not text:
        raise _static_error(
            element_id,
            text,
            msg("The expression is empty; write a condition or value over case data."),
            msg(
                "The expression in element {element_id!r} is empty; write a condition or value over case data.",
                element_id=element_id,
            ),
        )

    if len(text) > MAX_EXPRESSION_LENGTH:
        params = {"start": text[:40], "length": len(text), "limit": MAX_EXPRESSION_LENGTH}
        raise _static_error(
            element_id,
            text,
            msg("Expression {start!r}... has {length} characters, more than {limit}; shorten it.", **params),
            msg(
                "Expression {start!r}... in element {element_id!r} has {length} characters, more than "
                "{limit}; shorten it.",
                element_id=element_id,
                **params,
            ),
        )

    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        if _looks_like_cron(text):
            raise _static_error(
                element_id,
                text,
                msg(
                    "Expression {expression!r} looks like a cron schedule, but timers need ISO-8601: write "
                    "a duration such as PT5M, a date-time such as 2026-12-31T09:00:00+08:00 or a "
                    "repeating interval such as R3/P1D.",
                    expression=text,
                ),
                msg(
                    "Expression {expression!r} in element {element_id!r} looks like a cron schedule, but "
                    "timers need ISO-8601: write a duration such as PT5M, a date-time such as "
                    "2026-12-31T09:00:00+08:00 or a repeating interval such as R3/P1D.",
                    expression=text,
                    element_id=element_id,
                ),
            ) from error
        reason = error.msg if isinstance(error, SyntaxError) else str(error) or type(error).__name__
        params = {"expression": text, "reason": reason}
        raise _static_error(
            element_id,
            text,
            msg("Expression {expression!r} has invalid syntax ({reason}); correct it.", **params),
            msg(
                "Expression {expression!r} in element {element_id!r} has invalid syntax ({reason}); correct it.",
                element_id=element_id,
                **params,
            ),
        ) from error

    construct = _find_violation(tree)
    if construct is not None:
        # NOTE: ``construct`` is an English phrase, so a translated message still contains it.
        functions = ", ".join(sorted(ALLOWED_FUNCTIONS))
        params = {"expression": text, "construct": construct, "functions": functions}
        raise _static_error(
            element_id,
            text,
            msg(
                "Expression {expression!r} uses {construct}, which is not allowed. Use only case data, "
                "literals, comparisons, and/or/not, arithmetic, subscripts and the functions {functions}.",
                **params,
            ),
            msg(
                "Expression {expression!r} in element {element_id!r} uses {construct}, which is not allowed. "
                "Use only case data, literals, comparisons, and/or/not, arithmetic, subscripts and the "
                "functions {functions}.",
                element_id=element_id,
                **params,
            ),
        )
    return tree


def check_expression(expression: str, *, element_id: str | None = None, kind: str = "condition") -> None:
    """Check an expression at deploy time, without case data.

    Raise ExpressionError for anything the evaluator would reject. With ``kind="timer"`` a bare
    ISO-8601 value (``PT5M``, ``R3/P1D``, ``2026-12-31``) is accepted, and a quoted string must be
    one. Any other ``kind`` is checked as a condition.
    """
    text = expression.strip()
    if kind == "timer" and _is_iso8601_timer(text):
        _check_timer_value(text, text, element_id)
        return

    tree = _parse_checked(text, element_id)
    if kind == "timer" and isinstance(tree.body, ast.Constant) and isinstance(tree.body.value, str):
        _check_timer_value(tree.body.value.strip(), text, element_id)


def _check_timer_value(value: str, expression: str, element_id: str | None) -> None:
    if _is_iso8601_timer(value):
        reason = _iso8601_problem(value)
    else:
        reason = "not an ISO-8601 duration, date, date-time or repeating interval"
    if reason is None:
        return

    params = {"expression": expression, "reason": reason}
    raise _static_error(
        element_id,
        expression,
        msg(
            "Timer value {expression!r} is not valid ISO-8601 ({reason}); write a duration such as PT5M, "
            "a date-time such as 2026-12-31T09:00:00+08:00 or a repeating interval such as R3/P1D.",
            **params,
        ),
        msg(
            "Timer value {expression!r} in element {element_id!r} is not valid ISO-8601 ({reason}); write "
            "a duration such as PT5M, a date-time such as 2026-12-31T09:00:00+08:00 or a repeating "
            "interval such as R3/P1D.",
            element_id=element_id,
            **params,
        ),
    )


def expression_names(expression: str) -> set[str]:
    """Return the case-data names that ``expression`` reads, without the allowed functions it calls.

    An ISO-8601 value that is not valid Python (``2026-12-31T09:00:00``) reads no names. A duration
    such as ``PT5M`` is also a valid name and is returned, because a condition that reads it
    undefined would evaluate to its (truthy) text. Raise ExpressionError if ``check_expression``
    would reject the expression as a condition.
    """
    text = expression.strip()
    if _is_iso8601_timer(text):
        try:
            return _names_read(ast.parse(text, mode="eval"))
        except SyntaxError:
            return set()
    return _names_read(_parse_checked(text, None))


# Evaluation -----------------------------------------------------------------------------------

_EVALUATED_NODES = (
    ast.Name,
    ast.Constant,
    ast.UnaryOp,
    ast.BinOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Subscript,
    ast.Slice,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
)


class _CaseDataEvaluator(EvalWithCompoundTypes):
    """simpleeval evaluator that reads names from case data only and calls only ALLOWED_FUNCTIONS.

    ``_parse_checked`` has already rejected every other construct. Dropping their handlers here is a
    second barrier, because simpleeval raises FeatureNotAvailable for a node type without a handler.
    """

    nodes: dict[type[ast.AST], Callable[[Any], Any]]

    def __init__(self, names: Mapping[str, Any]) -> None:
        super().__init__(operators=dict(_OPERATORS), functions=dict(_FUNCTIONS), names=names)
        # EvalWithCompoundTypes adds list, tuple, dict and set to the functions.
        self.functions = dict(_FUNCTIONS)
        self.nodes = {node_type: self.nodes[node_type] for node_type in _EVALUATED_NODES}

    def _eval(self, node: ast.AST) -> Any:
        value = super()._eval(node)
        # Calls are checked too, because str() and sorted() of a large list return a value several times
        # its size, and nesting them would grow the value exponentially.
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict, ast.Call)):
            _check_size(_value_size(value))
        return value

    def _eval_name(self, node: ast.Name) -> Any:
        # simpleeval would fall back to the function table, returning a function object.
        try:
            return self.names[node.id]
        except KeyError:
            raise UndefinedVariable(
                msg(
                    "Expression {expression!r} uses the undefined variable {name!r}; submit a value "
                    "for it in an earlier step or correct the condition.",
                    expression=self.expr,
                    name=node.id,
                ),
                expression=self.expr,
                name=node.id,
            ) from None


class SafeEnvironment(BasePythonScriptEngineEnvironment):
    """Script engine environment that evaluates expressions over case data and runs no scripts."""

    def __init__(self) -> None:
        super().__init__(environment_globals={})

    def evaluate(
        self,
        expression: str,
        context: Mapping[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> Any:
        """Evaluate ``expression`` over task data (``context``) and data objects (``external_context``).

        Task data wins where both define a name, as in SpiffWorkflow's default environment. Bare
        ISO-8601 timer text is returned as a string unless it reads defined case data. Raise
        UndefinedVariable for a name missing from both and ExpressionError for any other failure.
        """
        text = expression.strip() if isinstance(expression, str) else ""
        names = {**(external_context or {}), **context}
        # NOTE: the environment cannot tell a timer from a gateway condition, so a condition that is
        # only an undefined duration-like name (P1D) also returns its text, which is truthy.
        if _is_iso8601_timer(text) and not _reads_defined_case_data(text, names):
            return text

        tree = _parse_checked(text, None)
        evaluator = _CaseDataEvaluator(names)
        try:
            return evaluator.eval(text, previously_parsed=tree.body)
        except ExpressionError:
            raise
        except Exception as error:
            raise ExpressionError(
                msg(
                    "Expression {expression!r} could not be evaluated on the case data: {reason}. "
                    "Correct the expression or the values it reads.",
                    expression=text,
                    reason=f"{type(error).__name__}: {error}",
                ),
                expression=text,
            ) from error

    def execute(
        self,
        script: str,
        context: Mapping[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> bool:
        """Raise ExpressionError, because liuhen runs no code from BPMN files."""
        raise ExpressionError(
            msg(
                "Script tasks are not supported, because liuhen runs no code from BPMN files. "
                "Replace the script task with a user task, or compute the value in a condition."
            ),
            expression=script if isinstance(script, str) else "",
        )

    def call_service(self, context: Mapping[str, Any], **kwargs: Any) -> Any:
        """Raise ExpressionError, because liuhen has no connector for service tasks."""
        operation = str(kwargs.get("operation_name", ""))
        raise ExpressionError(
            msg(
                "Service task operation {operation!r} cannot run, because liuhen does not call "
                "services from BPMN files. Replace the service task with a user task that records "
                "the result.",
                operation=operation,
            ),
            expression=operation,
        )


class SafeScriptEngine(PythonScriptEngine):
    """PythonScriptEngine over SafeEnvironment that raises ExpressionError unwrapped.

    SpiffWorkflow 3.2's ``PythonScriptEngine`` wraps every error that is not a SpiffWorkflow
    exception in ``WorkflowTaskException`` and keeps only the class name of the original. Here the
    ExpressionError itself propagates, with ``element_id`` set to the BPMN id of the task.
    """

    def __init__(self) -> None:
        super().__init__(environment=SafeEnvironment())

    def evaluate(self, task: Task, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except ExpressionError as error:
            _set_element(error, task)
            raise

    def execute(self, task: Task, script: str, external_context: Mapping[str, Any] | None = None) -> bool:
        try:
            return bool(self.environment.execute(script, task.data, external_context))
        except ExpressionError as error:
            _set_element(error, task)
            raise

    def call_service(self, task: Task, **kwargs: Any) -> Any:
        try:
            return self.environment.call_service(task.data, **kwargs)
        except ExpressionError as error:
            _set_element(error, task)
            raise


def _set_element(error: ExpressionError, task: Task) -> None:
    element_id = getattr(task.task_spec, "bpmn_id", None)
    if error.element_id is None and element_id is not None:
        error.element_id = element_id
        error.context["element_id"] = element_id


def make_script_engine() -> PythonScriptEngine:
    """Return a script engine for ``BpmnWorkflow`` that evaluates expressions safely.

    A workflow restored by ``BpmnWorkflowSerializer`` gets SpiffWorkflow's default engine, which
    runs ``eval``. Set ``workflow.script_engine = make_script_engine()`` after every restore.
    """
    return SafeScriptEngine()
