"""Performance grades of departments (优秀/良好/合格/不合格) over a period, from a TOML rule file.

A department starts from the rules' base score. It loses points per red card, yellow card and risk
event in the period, and by the band its case and step overdue rates fall in. The shipped rule file,
``engine/grading_rules.toml``, documents every key. Each grade lists the deductions that made its score.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import LiuhenError
from engine.extension import RISK_LEVELS
from engine.i18n import Message, dynamic, msg
from engine.periods import Period
from engine.service import Liuhen
from engine.statistics import GroupStatistics, compute_statistics
from engine.users import Actor

DEFAULT_RULES_PATH = Path(__file__).parent / "grading_rules.toml"
RULES_VERSION = 1
# Grades from best to worst. A score below the threshold of "pass" is "fail".
GRADE_NAMES = {"excellent": msg("Excellent"), "good": msg("Good"), "pass": msg("Pass"), "fail": msg("Fail")}
NOT_GRADED = msg("Not graded")
# Red cards have their own deduction, so the risk events they raise are not deducted a second time.
RED_CARD_RISK_KIND = "deadline_exceeded"

_TOP_KEYS = ("version", "base_score", "min_cases", "deductions", "overdue_rate", "grades")
_DEDUCTION_KEYS = ("red_card", "yellow_card", "risk_event")
_RATE_KEYS = ("cases", "steps")
_BAND_KEYS = ("above_percent", "points")
_THRESHOLD_KEYS = ("excellent", "good", "pass")


class GradeRulesError(LiuhenError):
    """The grade rule file cannot be read or breaks a rule. ``key`` names the offending key."""

    code = "grade_rules_invalid"
    status = 500

    def __init__(self, message: Message, *, source: str, key: str | None = None) -> None:
        super().__init__(message, source=source, key=key)
        self.source = source
        self.key = key


@dataclass(frozen=True)
class OverdueBand:
    above_percent: float
    points: float


@dataclass(frozen=True)
class GradeRules:
    source: str
    base_score: float
    min_cases: int
    red_card: float
    yellow_card: float
    risk_event: dict[str, float]
    # Sorted by threshold, lowest first.
    case_overdue_bands: tuple[OverdueBand, ...]
    step_overdue_bands: tuple[OverdueBand, ...]
    # Lowest score of excellent, good and pass.
    thresholds: dict[str, float]

    def grade_for(self, score: float) -> str:
        """Return the best grade whose lowest score ``score`` reaches."""
        for grade in _THRESHOLD_KEYS:
            if score >= self.thresholds[grade]:
                return grade
        return "fail"


@dataclass(frozen=True)
class Deduction:
    """Points taken off for one rule, which ``rule`` names by its key in the rule file."""

    rule: str
    points: float
    description: Message
    count: int | None = None
    points_each: float | None = None

    def to_json(self, locale: str | None) -> dict[str, Any]:
        return {"rule": self.rule, "points": self.points, "count": self.count, "points_each": self.points_each,
                "description": self.description.render(locale)}


@dataclass
class DepartmentGrade:
    department: str | None
    score: float
    # None when the department handled fewer cases than the rules' min_cases.
    grade: str | None
    deductions: list[Deduction]
    figures: GroupStatistics

    def grade_name(self) -> Message:
        return GRADE_NAMES[self.grade] if self.grade else NOT_GRADED

    def to_json(self, locale: str | None) -> dict[str, Any]:
        cases = self.figures.cases
        return {
            "department": self.department, "score": self.score, "grade": self.grade,
            "grade_name": self.grade_name().render(locale),
            "deductions": [deduction.to_json(locale) for deduction in self.deductions],
            "figures": self.figures.to_json(),
            "cases_handled": cases.handled if cases else 0,
        }


@dataclass
class GradeReport:
    period: Period
    rules: GradeRules
    departments: list[DepartmentGrade] = field(default_factory=list)

    def to_json(self, locale: str | None) -> dict[str, Any]:
        return {"period": self.period.to_json(), "rules": self.rules.source, "base_score": self.rules.base_score,
                "thresholds": self.rules.thresholds, "min_cases": self.rules.min_cases,
                "departments": [department.to_json(locale) for department in self.departments]}


def grade_departments(service: Liuhen, actor: Actor, period: Period, rules: GradeRules) -> GradeReport:
    """Grade every department with anything to count in ``period``."""
    figures = compute_statistics(service, actor, "department", period)
    report = GradeReport(period, rules)
    for group in figures.groups:
        deductions = deductions_for(group, rules)
        score = round(max(0.0, rules.base_score - sum(deduction.points for deduction in deductions)), 2)
        handled = group.cases.handled if group.cases else 0
        grade = rules.grade_for(score) if handled >= rules.min_cases else None
        report.departments.append(DepartmentGrade(group.key, score, grade, deductions, group))
    return report


def deductions_for(figures: GroupStatistics, rules: GradeRules) -> list[Deduction]:
    """List the deductions ``rules`` make for one department's figures, leaving out those of 0 points."""
    deductions = [
        _per_item("deductions.red_card", figures.red_cards, rules.red_card,
                  msg("Red cards: {count}; points per card: {points_each}", count=figures.red_cards,
                      points_each=_number_text(rules.red_card))),
        _per_item("deductions.yellow_card", figures.yellow_cards, rules.yellow_card,
                  msg("Yellow cards: {count}; points per card: {points_each}", count=figures.yellow_cards,
                      points_each=_number_text(rules.yellow_card))),
    ]
    for level in RISK_LEVELS:
        count = sum(number for (event_level, kind), number in figures.risk_event_counts.items()
                    if event_level == level and kind != RED_CARD_RISK_KIND)
        points_each = rules.risk_event[level]
        deductions.append(_per_item(
            f"deductions.risk_event.{level}", count, points_each,
            msg("Risk events of level {level}: {count}; points per event: {points_each}", level=dynamic(level),
                count=count, points_each=_number_text(points_each))))
    if figures.cases is not None:
        deductions.append(_band("overdue_rate.cases", figures.cases.overdue, figures.cases.handled,
                                rules.case_overdue_bands, "cases"))
    deductions.append(_band("overdue_rate.steps", figures.steps.overdue, figures.steps.handled,
                            rules.step_overdue_bands, "steps"))
    return [deduction for deduction in deductions if deduction is not None and deduction.points > 0]


def _per_item(rule: str, count: int, points_each: float, description: Message) -> Deduction | None:
    if not count or not points_each:
        return None
    return Deduction(rule, round(count * points_each, 2), description, count, points_each)


def _band(rule: str, overdue: int, handled: int, bands: tuple[OverdueBand, ...], subject: str) -> Deduction | None:
    if not handled:
        return None
    # Compare overdue / handled > above_percent / 100 without dividing, so a rate equal to a threshold is not above it.
    exceeded = [band for band in bands if overdue * 100 > band.above_percent * handled]
    if not exceeded:
        return None
    band = exceeded[-1]
    rate = _number_text(round(overdue * 100 / handled, 1))
    threshold = _number_text(band.above_percent)
    if subject == "cases":
        description = msg("Case overdue rate {rate}% is above {threshold}%", rate=rate, threshold=threshold)
    else:
        description = msg("Step overdue rate {rate}% is above {threshold}%", rate=rate, threshold=threshold)
    return Deduction(rule, band.points, description)


def _number_text(value: float) -> str:
    """Write 5.0 as 5 and 0.5 as 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# Reading the rule file.


def load_grade_rules(path: Path | None) -> GradeRules:
    """Read the rule file at ``path``, or the shipped rules when ``path`` is None."""
    rules_path = path or DEFAULT_RULES_PATH
    source = str(rules_path)
    try:
        text = rules_path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise GradeRulesError(msg("The grade rule file {source} cannot be read: {reason}. Set LIUHEN_GRADE_RULES "
                                  "to a readable TOML file, or leave it unset to use the shipped rules.",
                                  source=source, reason=exc.strerror or str(exc)), source=source) from exc
    except UnicodeDecodeError as exc:
        raise GradeRulesError(msg("The grade rule file {source} is not UTF-8 text; save it as UTF-8.",
                                  source=source), source=source) from exc
    return parse_grade_rules(text, source)


def parse_grade_rules(text: str, source: str) -> GradeRules:
    """Parse and check the TOML text of a rule file, named ``source`` in errors."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GradeRulesError(msg("The grade rule file {source} is not valid TOML: {reason}. Correct it, or leave "
                                  "LIUHEN_GRADE_RULES unset to use the shipped rules.", source=source,
                                  reason=str(exc)), source=source) from exc
    reader = _RuleReader(source)
    reader.check_keys(document, "", _TOP_KEYS)

    version = reader.whole_number(document, "version", "version", 1)
    if version != RULES_VERSION:
        raise reader.error(msg("The grade rule file {source} has version {value}, which this release cannot read; "
                               "write version = 1.", source=source, value=version), "version")
    base_score = reader.number(document, "base_score", "base_score", "100")
    min_cases = reader.whole_number(document, "min_cases", "min_cases", 1, default=1)

    deductions = reader.table(document, "deductions", "deductions", "[deductions]")
    reader.check_keys(deductions, "deductions.", _DEDUCTION_KEYS)
    red_card = reader.number(deductions, "red_card", "deductions.red_card", "5")
    yellow_card = reader.number(deductions, "yellow_card", "deductions.yellow_card", "1")
    risk_table = reader.table(deductions, "risk_event", "deductions.risk_event", "[deductions.risk_event]")
    reader.check_keys(risk_table, "deductions.risk_event.", RISK_LEVELS)
    risk_event = {level: reader.number(risk_table, level, f"deductions.risk_event.{level}", "2")
                  for level in RISK_LEVELS}

    rates = reader.table(document, "overdue_rate", "overdue_rate", "[[overdue_rate.cases]]", default={})
    reader.check_keys(rates, "overdue_rate.", _RATE_KEYS)
    case_bands = reader.bands(rates, "cases")
    step_bands = reader.bands(rates, "steps")

    grades = reader.table(document, "grades", "grades", "[grades]")
    reader.check_keys(grades, "grades.", _THRESHOLD_KEYS)
    thresholds = {grade: reader.number(grades, grade, f"grades.{grade}", example)
                  for grade, example in zip(_THRESHOLD_KEYS, ("90", "80", "60"), strict=True)}
    reader.check_thresholds(thresholds, base_score)

    return GradeRules(source, base_score, min_cases, red_card, yellow_card, risk_event, case_bands, step_bands,
                      thresholds)


_MISSING = object()


class _RuleReader:
    """Reads typed values out of a parsed rule file, raising GradeRulesError that names the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, message: Message, key: str) -> GradeRulesError:
        return GradeRulesError(message, source=self.source, key=key)

    def check_keys(self, table: dict[str, Any], prefix: str, allowed: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                raise self.error(msg("The grade rule file {source}: key {key} is unknown; the keys allowed here "
                                     "are {allowed}.", source=self.source, key=prefix + name,
                                     allowed=", ".join(prefix + key for key in allowed)), prefix + name)

    def _value(self, table: dict[str, Any], name: str, key: str, example: str, default: Any) -> Any:
        value = table.get(name, _MISSING)
        if value is _MISSING:
            if default is not _MISSING:
                return default
            raise self.error(msg("The grade rule file {source}: key {key} is missing; add it, for example: "
                                 "{example}", source=self.source, key=key, example=example), key)
        return value

    def number(self, table: dict[str, Any], name: str, key: str, example: str, default: Any = _MISSING) -> float:
        """Read a number of points or a score, zero or more."""
        value = self._value(table, name, key, f"{name} = {example}", default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(msg("The grade rule file {source}: key {key} must be a number such as {example}, "
                                 "not {value!r}.", source=self.source, key=key, example=example, value=value), key)
        if value < 0:
            raise self.error(msg("The grade rule file {source}: key {key} must be zero or more, not {value}.",
                                 source=self.source, key=key, value=value), key)
        return float(value)

    def whole_number(self, table: dict[str, Any], name: str, key: str, example: int,
                     default: Any = _MISSING) -> int:
        value = self._value(table, name, key, f"{name} = {example}", default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(msg("The grade rule file {source}: key {key} must be a whole number such as {example}, "
                                 "not {value!r}.", source=self.source, key=key, example=example, value=value), key)
        return value

    def table(self, parent: dict[str, Any], name: str, key: str, example: str,
              default: Any = _MISSING) -> dict[str, Any]:
        value = self._value(parent, name, key, example, default)
        if not isinstance(value, dict):
            raise self.error(msg("The grade rule file {source}: key {key} must be a table, written as {example} on a "
                                 "line of its own with its keys below it.", source=self.source, key=key,
                                 example=example), key)
        return value

    def bands(self, rates: dict[str, Any], name: str) -> tuple[OverdueBand, ...]:
        key = f"overdue_rate.{name}"
        value = rates.get(name, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise self.error(msg("The grade rule file {source}: key {key} must be a list of bands, each written as "
                                 "[[{key}]] followed by above_percent and points.", source=self.source, key=key),
                             key)
        bands = []
        for number, item in enumerate(value, start=1):
            prefix = f"{key}[{number}]."
            self.check_keys(item, prefix, _BAND_KEYS)
            above = self.number(item, "above_percent", prefix + "above_percent", "10")
            if above > 100:
                raise self.error(msg("The grade rule file {source}: key {key} must be a percentage from 0 to 100, "
                                     "not {value}.", source=self.source, key=prefix + "above_percent",
                                     value=_number_text(above)), prefix + "above_percent")
            bands.append(OverdueBand(above, self.number(item, "points", prefix + "points", "5")))
        thresholds = [band.above_percent for band in bands]
        repeated = next((value for value in thresholds if thresholds.count(value) > 1), None)
        if repeated is not None:
            raise self.error(msg("The grade rule file {source}: key {key} has two bands above {value}%; give each "
                                 "band its own above_percent.", source=self.source, key=key,
                                 value=_number_text(repeated)), key)
        return tuple(sorted(bands, key=lambda band: band.above_percent))

    def check_thresholds(self, thresholds: dict[str, float], base_score: float) -> None:
        if thresholds["excellent"] > base_score:
            raise self.error(msg("The grade rule file {source}: key grades.excellent ({value}) is above base_score "
                                 "({base}), so no department could reach it; lower it.", source=self.source,
                                 value=_number_text(thresholds["excellent"]), base=_number_text(base_score)),
                             "grades.excellent")
        for better, worse in zip(_THRESHOLD_KEYS, _THRESHOLD_KEYS[1:], strict=False):
            if thresholds[better] <= thresholds[worse]:
                raise self.error(msg("The grade rule file {source}: key grades.{better} ({value}) must be higher "
                                     "than grades.{worse} ({other}), because a better grade needs a higher score.",
                                     source=self.source, better=better, worse=worse,
                                     value=_number_text(thresholds[better]), other=_number_text(thresholds[worse])),
                                 f"grades.{better}")
