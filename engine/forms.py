"""Check data submitted for a step against the form fields its flowchart declares."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.errors import InvalidInput
from engine.expressions import ALLOWED_FUNCTIONS
from engine.i18n import Message, msg

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_TEXT = 10_000
MAX_KEYS = 200


def _invalid(field: dict[str, Any], value: Any, expected: Message) -> InvalidInput:
    return InvalidInput(msg(
        "Field {name} ({label}) got {value!r}, which is not a valid {expected}; submit a {expected}.",
        name=field["name"], label=field["label"], value=value, expected=expected))


def _coerce(field: dict[str, Any], value: Any) -> Any:
    kind = field["type"]
    if kind in ("string", "text"):
        if not isinstance(value, str):
            raise _invalid(field, value, msg("text"))
        if len(value) > MAX_TEXT:
            raise InvalidInput(msg("Field {name} is {length} characters long, over the limit of {limit}.",
                                   name=field["name"], length=len(value), limit=MAX_TEXT))
        return value
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        raise _invalid(field, value, msg("true/false value"))
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise _invalid(field, value, msg("whole number"))
        try:
            whole = int(value)
        except ValueError:
            raise _invalid(field, value, msg("whole number")) from None
        _check_bounds(field, Decimal(whole))
        return whole
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _invalid(field, value, msg("number"))
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise _invalid(field, value, msg("number")) from None
        if not number.is_finite():
            raise _invalid(field, value, msg("number"))
        _check_bounds(field, number)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "date":
        try:
            return dt.date.fromisoformat(value).isoformat() if isinstance(value, str) else None
        except ValueError:
            raise _invalid(field, value, msg("date (YYYY-MM-DD)")) from None
    if kind == "enum":
        allowed = [option["value"] for option in field["options"]]
        if value not in allowed:
            # Each value with the label the form shows, because people know the labels.
            choices = ", ".join(f"{option['value']} ({option['label']})" if option["label"] != option["value"]
                                else option["value"] for option in field["options"])
            raise InvalidInput(msg("Field {name} ({label}) got {value!r}; choose one of: {allowed}.",
                                   name=field["name"], label=field["label"], value=value, allowed=choices))
        return value
    raise _invalid(field, value, msg("value of type {kind}", kind=kind))


def _check_bounds(field: dict[str, Any], number: Decimal) -> None:
    """Reject a number outside the field's inclusive min and max, where the flowchart sets them."""
    if "min" in field and number < Decimal(field["min"]):
        raise InvalidInput(msg("Field {name} ({label}) got {value}, below the minimum of {min}; enter at least {min}.",
                               name=field["name"], label=field["label"], value=str(number), min=field["min"]))
    if "max" in field and number > Decimal(field["max"]):
        raise InvalidInput(msg("Field {name} ({label}) got {value}, above the maximum of {max}; enter at most {max}.",
                               name=field["name"], label=field["label"], value=str(number), max=field["max"]))


def check_keys(data: dict[str, Any]) -> None:
    if len(data) > MAX_KEYS:
        raise InvalidInput(msg("The submitted data has {count} fields, over the limit of {limit}.",
                               count=len(data), limit=MAX_KEYS))
    for key in data:
        if not isinstance(key, str) or not _KEY.match(key) or key.startswith("__") or key in ALLOWED_FUNCTIONS:
            raise InvalidInput(msg(
                "Data field name {key!r} is invalid; use letters, digits and underscores (at most 64), "
                "not starting with a digit or two underscores, and not a function name.", key=key))


def validate_submission(fields: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """Return ``data`` with values converted to their declared types, or raise InvalidInput."""
    check_keys(data)
    if not fields:
        return dict(data)
    by_name = {field["name"]: field for field in fields}
    unknown = sorted(set(data) - set(by_name))
    if unknown:
        raise InvalidInput(msg("This step has no field {key!r}; its fields are: {allowed}.",
                               key=unknown[0], allowed=", ".join(by_name)))
    missing = [f"{name} ({field['label']})" for name, field in by_name.items()
               if field["required"] and data.get(name) in (None, "")]
    if len(missing) > 1:
        raise InvalidInput(msg("Required fields are missing: {fields}; fill them all in.", fields=", ".join(missing)))
    result: dict[str, Any] = {}
    for name, field in by_name.items():
        value = data.get(name)
        if value is None or value == "":
            if field["required"]:
                raise InvalidInput(msg("Field {name} ({label}) is required; fill it in.",
                                       name=name, label=field["label"]))
            # An optional field left empty is still defined, so conditions can test it for None.
            result[name] = None
            continue
        result[name] = _coerce(field, value)
    return result
