"""`liuhen versions`, `liuhen diff` and `liuhen review`: versions of a process, their changes, checkpoint reviews."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.cli_times import local_date, local_time
from diagrams.diff_overlay import SECTION_LABELS, STATUS_MARKERS
from engine.checkpoint_review import mark_reviewed, review_report
from engine.i18n import dynamic
from engine.settings import Settings
from engine.versions import Change, diff_versions


def cmd_versions(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    service = _service(settings)
    versions = service.list_definitions(args.process)
    if not versions:
        service.get_definition(args.process)  # raises NotFound with the usual message
    for version in versions:
        out("Version {version}  {name}  deployed by {deployed_by} at {deployed_at}  {content_hash}",
            version=version["version"], name=version["name"], deployed_by=version["deployed_by"],
            deployed_at=local_time(version["deployed_at"]), content_hash=version["content_hash"][:12])
    return 0


def cmd_diff(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    service = _service(settings)
    diff = diff_versions(service, args.process, args.old, args.new)
    if args.diagram:
        from api.diff_rendering import diff_diagram

        path = Path(args.diagram)
        fmt = path.suffix.lstrip(".").lower()
        if fmt not in ("svg", "png", "pdf"):
            out.error("--diagram must name a .svg, .png or .pdf file, not {path}.", path=path)
            return 2
        path.write_bytes(diff_diagram(service, diff, fmt, out.locale))
    if args.json:
        print(json.dumps(diff.to_json(), ensure_ascii=False, indent=2))
        return 0

    out("{process_id}: version {old} ({old_by}, {old_at}) to version {new} ({new_by}, {new_at})",
        process_id=diff.process_id, old=diff.old["version"], old_by=diff.old["deployed_by"],
        old_at=local_time(diff.old["deployed_at"]), new=diff.new["version"],
        new_by=diff.new["deployed_by"], new_at=local_time(diff.new["deployed_at"]))
    if not diff.changes:
        out("The two versions do not differ in nodes, flows, lanes, checkpoints, controls, form fields or limits.")
    for change in diff.changes:
        _print_change(change, out)
    if args.diagram:
        out("Diagram written to {path}.", path=args.diagram)
    return 0


def _print_change(change: Change, out: Any) -> None:
    kind = STATUS_MARKERS[change.kind].render(out.locale)
    section = SECTION_LABELS[change.section].render(out.locale)
    where = f"  @ {change.element_id}" if change.element_id and change.element_id != change.key else ""
    name = f"  {change.name}" if change.name else ""
    print(f"  {kind}  {section}  {change.key}{name}{where}")
    for field in change.fields:
        before = change.before.get(field) if change.before else None
        after = change.after.get(field) if change.after else None
        for path, old, new in _changed_values(field, before, after):
            print(f"      {path}: {_json(old)} → {_json(new)}")


def _changed_values(path: str, before: Any, after: Any) -> list[tuple[str, Any, Any]]:
    """List the values that differ, comparing objects key by key so that each changed key gets its own line."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return [(path, before, after)]
    rows = []
    for key in dict.fromkeys([*before, *after]):
        if before.get(key) != after.get(key):
            rows.extend(_changed_values(f"{path}.{key}", before.get(key), after.get(key)))
    return rows


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def cmd_review_report(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    rows = review_report(service, _cli_actor(service, args.as_user), args.process)
    if args.json:
        print(json.dumps([row.to_json() for row in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        out("No risk checkpoints in the deployed processes.")
        return 0
    for row in rows:
        out("{process_id} v{version}  {checkpoint} ({level})  {step}{due}", process_id=row.process_id,
            version=row.version, checkpoint=row.checkpoint_id, level=dynamic(row.level).render(out.locale),
            step=row.step_name, due=out.text("  [review due]") if row.review_due else "")
        out("  unchanged since version {version} ({date}, {days} days); since then: risk events high {high}, "
            "medium {medium}, low {low}; cases that passed the step: {cases}",
            version=row.unchanged_since_version, date=local_date(row.unchanged_since).isoformat(),
            days=row.unchanged_days, high=row.risk_events.get("high", 0), medium=row.risk_events.get("medium", 0),
            low=row.risk_events.get("low", 0), cases=row.cases_passed)
        if row.last_review is None:
            out("  never marked reviewed")
        else:
            out("  last reviewed by {user} at {at}: {note}", user=row.last_review.reviewed_by,
                at=local_time(row.last_review.reviewed_at), note=row.last_review.note)
    return 0


def cmd_review_mark(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    review = mark_reviewed(service, _cli_actor(service, args.as_user), args.checkpoint, args.note, args.process)
    out("Risk checkpoint {checkpoint} of {process_id} version {version} is marked reviewed by {user}.",
        checkpoint=review.checkpoint_id, process_id=review.process_id, version=review.version,
        user=review.reviewed_by)
    return 0


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    versions = add("versions", cmd_versions, t("List the deployed versions of a process, who deployed them and when."))
    versions.add_argument("process", metavar="PROCESS_ID")

    diff = add("diff", cmd_diff, t("Show what changed between two versions of a process."))
    diff.add_argument("process", metavar="PROCESS_ID")
    diff.add_argument("old", type=int, metavar="V1", help=t("The older version."))
    diff.add_argument("new", type=int, metavar="V2", help=t("The newer version."))
    diff.add_argument("--json", action="store_true", help=t("Print the changes as JSON."))
    diff.add_argument("--diagram", metavar="FILE",
                      help=t("Also draw the changes on the newer flowchart into FILE (.svg, .png or .pdf)."))

    # Each action below sets its own handler, which replaces this one.
    review = add("review", cmd_review_report, t("Review the risk checkpoints of the newest versions (annual review)."))
    actions = review.add_subparsers(dest="review_action", required=True, metavar="ACTION")
    report = actions.add_parser("report", help=t("List each checkpoint: unchanged since when, risk events and cases "
                                                 "since, last review."),
                                description=t("List each checkpoint: unchanged since when, risk events and cases "
                                              "since, last review."))
    report.set_defaults(handler=cmd_review_report)
    report.add_argument("--process", help=t("Only checkpoints of this process id."))
    report.add_argument("--json", action="store_true", help=t("Print the report as JSON."))
    report.add_argument("--as", dest="as_user", help=t("Read the report as this user."))
    mark = actions.add_parser("mark", help=t("Mark a checkpoint reviewed, with a note recorded in the trace."),
                              description=t("Mark a checkpoint reviewed, with a note recorded in the trace."))
    mark.set_defaults(handler=cmd_review_mark)
    mark.add_argument("checkpoint", metavar="CHECKPOINT_ID")
    mark.add_argument("--note", required=True, help=t("What was reviewed and concluded."))
    mark.add_argument("--process", help=t("The process, when several have a checkpoint with this id."))
    mark.add_argument("--as", dest="as_user", help=t("Record the review as this user."))
