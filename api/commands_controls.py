"""`liuhen override ...` and `liuhen overrides`: overrides of hard controls from the command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from engine import overrides
from engine.settings import Settings


def _show(out: Any, override: dict[str, Any]) -> None:
    out("Override {id}  case {case_id}  task {task_id}  control {control_id}  {status}  requested by {requested_by}"
        "{decided}", id=override["id"], case_id=override["case_id"], task_id=override["task_id"],
        control_id=override["control_id"], status=out.text(override["status"]),
        requested_by=override["requested_by"],
        decided=out.text(", decided by {user}", user=override["decided_by"]) if override["decided_by"] else "")
    out("  reason: {reason}", reason=override["reason"])


def cmd_request(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    override = overrides.request_override(service, args.task, args.control, args.reason,
                                          _cli_actor(service, args.as_user))
    out("Override {id} is requested; a different administrator must approve it with `liuhen override approve "
        "{id}`.", id=override["id"])
    return 0


def cmd_approve(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    return _decide(args, settings, out, approve=True)


def cmd_reject(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    return _decide(args, settings, out, approve=False)


def _decide(args: argparse.Namespace, settings: Settings, out: Any, *, approve: bool) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    override = overrides.decide_override(service, args.id, _cli_actor(service, args.as_user), approve, args.note)
    _show(out, override)
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    rows = overrides.list_overrides(service, _cli_actor(service, args.as_user), status=args.status,
                                    case_id=args.case, limit=args.limit)
    if not rows:
        out("No overrides.")
        return 0
    for override in rows:
        _show(out, override)
    return 0


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    # Each action below sets its own handler, which replaces this one.
    override = add("override", cmd_request, t("Request, approve or reject the override of a hard control."))
    actions = override.add_subparsers(dest="override_action", required=True, metavar="ACTION")

    request = actions.add_parser("request", help=t("Ask to let one task pass one hard control once."),
                                 description=t("Ask to let one task pass one hard control once."))
    request.set_defaults(handler=cmd_request)
    request.add_argument("task", metavar="TASK_ID")
    request.add_argument("control", metavar="CONTROL_ID")
    request.add_argument("--reason", required=True,
                         help=t("Why the control should not apply, at least 10 characters; recorded in the trace."))
    request.add_argument("--as", dest="as_user", help=t("Administrator who requests the override."))

    for name, handler, help_text in (
        ("approve", cmd_approve, t("Approve a pending override (not the administrator who requested it).")),
        ("reject", cmd_reject, t("Reject a pending override (not the administrator who requested it).")),
    ):
        decision = actions.add_parser(name, help=help_text, description=help_text)
        decision.set_defaults(handler=handler)
        decision.add_argument("id", type=int, metavar="OVERRIDE_ID")
        decision.add_argument("--note", help=t("A note on the decision, recorded in the trace."))
        decision.add_argument("--as", dest="as_user", help=t("Administrator who decides."))

    listing = add("overrides", cmd_list, t("List overrides of hard controls, newest first."))
    listing.add_argument("--status", choices=list(overrides.STATUSES))
    listing.add_argument("--case", type=int, help=t("Only overrides of this case."))
    listing.add_argument("--limit", type=int, default=50, help=t("Maximum number of overrides to list."))
    listing.add_argument("--as", dest="as_user", help=t("List as this user (an administrator or auditor)."))
