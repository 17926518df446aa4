"""`liuhen admin ...`: administrative interventions from the command line."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from engine import interventions
from engine.settings import Settings


def _report(out: Any, case: dict[str, Any]) -> int:
    out("Case {case_id} is now {status} on version {version}.", case_id=case["id"], status=out.text(case["status"]),
        version=case["version"])
    return 0


def cmd_reassign(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    case = interventions.reassign_task(service, args.task, _cli_actor(service, args.as_user), args.to, args.reason)
    return _report(out, case)


def cmd_skip(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service, json_object

    data = json_object(args.data, out)
    if data is None:
        return 2
    service = _service(settings)
    case = interventions.skip_step(service, args.task, _cli_actor(service, args.as_user), args.reason, data)
    return _report(out, case)


def cmd_edit_data(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service, json_object

    data = json_object(args.data, out)
    if data is None:
        return 2
    service = _service(settings)
    case = interventions.edit_case_data(service, args.case, _cli_actor(service, args.as_user), data, args.reason)
    return _report(out, case)


def cmd_migrate(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    case = interventions.migrate_case(service, args.case, _cli_actor(service, args.as_user), args.version,
                                      args.reason)
    return _report(out, case)


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    def common(command: argparse.ArgumentParser) -> None:
        command.add_argument("--reason", required=True, help=t("Written reason, recorded in the trace."))
        command.add_argument("--as", dest="as_user", help=t("Administrator to record as approver."))

    reassign = add("reassign", cmd_reassign, t("Give an open task to another user of its post."))
    reassign.add_argument("task", metavar="TASK_ID")
    reassign.add_argument("--to", required=True, help=t("Username of the new holder."))
    common(reassign)
    skip = add("skip", cmd_skip, t("Complete an open task as an administrator, without its checks."))
    skip.add_argument("task", metavar="TASK_ID")
    skip.add_argument("--data", help=t("Data to submit, as a JSON object."))
    common(skip)
    edit = add("edit-data", cmd_edit_data, t("Change case data; the trace keeps the old values."))
    edit.add_argument("case", type=int, metavar="CASE")
    edit.add_argument("--data", required=True, help=t("Changed fields as a JSON object."))
    common(edit)
    migrate = add("migrate-case", cmd_migrate, t("Move a running case to another version of its process."))
    migrate.add_argument("case", type=int, metavar="CASE")
    migrate.add_argument("--version", type=int, required=True, help=t("Target version number."))
    common(migrate)
