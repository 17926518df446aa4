"""`liuhen board`, `liuhen notices` and `liuhen check-deadlines`: the supervision board, notices and cards."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from api.cli_times import local_time
from engine import supervision
from engine.settings import Settings
from engine.users import SYSTEM_ACTOR


def cmd_board(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    filters = supervision.BoardFilter(department=args.department, process_id=args.process,
                                      power_item=args.power_item, risk_level=args.risk_level, card=args.card,
                                      limit=args.limit)
    entries = supervision.board(service, _cli_actor(service, args.as_user), filters)
    if not entries:
        out("No running cases match.")
        return 0
    for entry in entries:
        step_names = {step["element_id"]: step["name"] for step in entry["steps"] if step["name"]}
        out("Case {case_id}  {card}  {process_name}  {title}  department: {department}  risk: {risk_level}",
            case_id=entry["case_id"], card=card_text(out, entry["card"]), process_name=entry["process_name"],
            title=entry["title"] or "", department=entry["department"] or "-",
            risk_level=_level(out, entry["risk_level"]))
        for clock in entry["clocks"]:
            out("  {clock}: due {due_at}, {left}  {card}{marks}",
                clock=_clock_name(out, clock, step_names), due_at=local_time(clock["due_at"]),
                left=days_left_text(out, clock["days_left"]),
                card=card_text(out, clock["card"]), marks=_marks(out, clock))
        for step in entry["steps"]:
            out("  Step {name} [{element_id}]  post: {post}  holder: {holder}", name=step["name"] or "",
                element_id=step["element_id"], post=step["post"] or "-", holder=step["assignee"] or "-")
    return 0


def cmd_notices(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _element_name, _service

    service = _service(settings)
    actor = _cli_actor(service, args.as_user)
    scope = "all" if args.as_user is None or args.all else "mine"
    notices = supervision.list_notices(service, actor, scope=scope, status=args.status, case_id=args.case)
    if not notices:
        out("No supervision notices.")
        return 0
    for notice in notices:
        step = _element_name(service, notice["case_id"], notice["element_id"])
        out("Notice {id}  case {case_id}  {clock}, due {due_at}  step {step}  holder: {holder}  post: {post}  "
            "leader: {leader}  {status}", id=notice["id"], case_id=notice["case_id"],
            clock=_clock_name(out, notice, {notice["element_id"]: step}), due_at=local_time(notice["due_at"]),
            step=step,
            holder=notice["holder"] or "-", post=notice["post"] or "-", leader=notice["leader"] or "-",
            status=out.text("answered") if notice["status"] == supervision.NOTICE_ANSWERED else out.text("open"))
        if notice["answer"]:
            out("  Answer by {username}: {answer}", username=notice["answered_by"], answer=notice["answer"])
    return 0


def cmd_check_deadlines(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    raised = supervision.check_deadlines(_service(settings), SYSTEM_ACTOR)
    yellow = sum(1 for card in raised if card.colour == "yellow")
    out("Raised cards: {yellow} yellow, {red} red.", yellow=yellow, red=len(raised) - yellow)
    return 0


def days_left_text(out: Any, days: int | None) -> str:
    """Say how many working days are left, or by how many the limit is exceeded, as the web pages do."""
    if days is None:
        return "-"
    if days < 0:
        return str(out.text("overdue by {days} working days", days=-days))
    return str(out.text("{days} working days left", days=days))


def card_text(out: Any, colour: str) -> str:
    """Return the name of a card colour, or the text for a clock that is on time."""
    if colour == "red":
        return str(out.text("red card"))
    if colour == "yellow":
        return str(out.text("yellow card"))
    return str(out.text("on time"))


def _level(out: Any, level: str | None) -> str:
    if level == "high":
        return str(out.text("high"))
    if level == "medium":
        return str(out.text("medium"))
    if level == "low":
        return str(out.text("low"))
    return "-"


def _clock_name(out: Any, clock: dict[str, Any], step_names: dict[str, str]) -> str:
    """Return the name of a clock, with a step's clock named by its step in ``step_names`` or else by the step's id."""
    name = clock["clock"]
    if name == "statutory":
        return str(out.text("statutory time limit"))
    if name == "promised":
        return str(out.text("promised time limit"))
    element_id = clock.get("element_id")
    return str(out.text("time limit of step {step}", step=step_names.get(element_id or "", element_id or "-")))


def _marks(out: Any, clock: dict[str, Any]) -> str:
    marks = []
    if clock["paused"]:
        marks.append(out.text("paused"))
    if clock["provisional"]:
        marks.append(out.text("provisional"))
    return "".join(f"  ({mark})" for mark in marks)


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    board = add("board", cmd_board, t("Show the supervision board: running cases with their cards and time left."))
    board.add_argument("--department", help=t("Only cases of this department."))
    board.add_argument("--process", help=t("Only cases of this process id."))
    board.add_argument("--power-item", metavar="CODE", help=t("Only cases of the power item with this code."))
    board.add_argument("--risk-level", choices=["high", "medium", "low"],
                       help=t("Only cases whose current step has this highest risk level."))
    board.add_argument("--card", choices=["red", "yellow", "none"], help=t("Only cases with this card."))
    board.add_argument("--limit", type=int, default=200, help=t("Maximum number of cases to show."))
    board.add_argument("--as", dest="as_user", help=t("Show the board as this user (an auditor or administrator)."))

    notices = add("notices", cmd_notices, t("List supervision notices (all, or those of one user with --as)."))
    notices.add_argument("--as", dest="as_user", help=t("List the notices addressed to this user or their posts."))
    notices.add_argument("--all", action="store_true", help=t("With --as, list every notice (auditors)."))
    notices.add_argument("--status", choices=["open", "answered", "any"], default="open",
                         help=t("Only notices with this status (default open)."))
    notices.add_argument("--case", type=int, help=t("Only notices of this case."))

    add("check-deadlines", cmd_check_deadlines, t("Raise every yellow and red card that is due now."))
