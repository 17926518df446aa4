"""`liuhen replay`, `liuhen state` and `liuhen conformance`: audit commands over recorded cases."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from api.cli_times import SECONDS, local_time
from engine.conformance import CaseConformance, case_conformance, deviation_label, version_conformance
from engine.i18n import dynamic
from engine.replay import replay_case, state_at
from engine.settings import Settings


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _duration(out: Any, seconds: float) -> str:
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return str(out.text("{days} d {hours} h {minutes} min", days=days, hours=hours, minutes=minutes))
    if hours or minutes:
        return str(out.text("{hours} h {minutes} min", hours=hours, minutes=minutes))
    return str(out.text("{seconds} s", seconds=secs))


def cmd_replay(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    report = replay_case(_service(settings), args.case)
    if args.json:
        _print_json(report.as_dict(out.locale))
        return 0 if report.ok else 1
    for intervention in report.interventions:
        out("Event {seq}: administrative intervention {kind} by {actor}.",
            seq=intervention["seq"], kind=out.text(intervention["kind"]), actor=intervention["actor"])
    divergence = report.divergence
    if divergence is None:
        out("Case {case_id} replayed on {process_id} version {version}: all {events} events match what the "
            "engine produces again ({steps} steps re-run).", case_id=report.case_id, process_id=report.process_id,
            version=report.version, events=report.events, steps=report.steps)
        return 0
    if report.checked == 0:
        # The check of the trace or of the definition failed, so no event was replayed.
        out.error("Case {case_id} was not replayed: {message}", case_id=report.case_id,
                  message=divergence.message.render(out.locale))
        return 1
    if report.status == "incomplete":
        out.error("Case {case_id} was replayed only in part ({checked} of {events} events checked): {message}",
                  case_id=report.case_id, checked=report.checked, events=report.events,
                  message=divergence.message.render(out.locale))
        return 1
    out.error("Case {case_id} diverges from its record ({checked} of {events} events matched first): {message}",
              case_id=report.case_id, checked=report.checked, events=report.events,
              message=divergence.message.render(out.locale))
    return 1


def cmd_state(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    state = state_at(_service(settings), args.case, args.at)
    if args.json:
        _print_json(state)
        return 0
    out("Case {case_id} after event {seq} (its step ends with event {through_seq}), at {at}: {status}, "
        "{elapsed} after the start.", case_id=state["case_id"], seq=state["seq"], through_seq=state["through_seq"],
        at=local_time(state["at"], SECONDS), status=out.text(state["status"]),
        elapsed=_duration(out, state["elapsed_seconds"]))
    if state["open_tasks"]:
        out("Open steps:")
    for task in state["open_tasks"]:
        out("  {name} [{element_id}]  post: {lane}  assignee: {assignee}  ready since {ready_at}",
            name=task["name"] or "", element_id=task["element_id"], lane=task["lane"] or "-",
            assignee=task["assignee"] or "-", ready_at=local_time(task["ready_at"], SECONDS))
    if state["timers"]:
        out("Timers waiting:")
    for timer in state["timers"]:
        out("  {name} [{element_id}] due at {due}", name=timer["name"] or "", element_id=timer["element_id"],
            due=local_time(timer["due"], SECONDS))
    out("Case data:")
    _print_json(state["data"])
    return 0


def _warn_altered(out: Any, definition_id: int) -> None:
    out.error("The stored BPMN file of definition {definition_id} no longer matches its content hash, so this "
              "check ran against an altered model; `liuhen replay` shows the details.", definition_id=definition_id)


def _print_case(out: Any, result: CaseConformance) -> None:
    if not result.definition_intact:
        _warn_altered(out, result.definition_id)
    if result.conforms:
        out("Case {case_id} ({process_id} version {version}, {status}) followed its model without deviation.",
            case_id=result.case_id, process_id=result.process_id, version=result.version,
            status=dynamic(result.status))
    else:
        out("Case {case_id} ({process_id} version {version}, {status}) deviated from its model {count} times:",
            case_id=result.case_id, process_id=result.process_id, version=result.version,
            status=dynamic(result.status), count=len(result.deviations))
    for deviation in result.deviations:
        out("  {message}", message=deviation.message.render(out.locale))
    out("Path: {path}", path=" → ".join(step["element_id"] or "-" for step in result.path) or "-")
    if result.repeated_steps:
        out("Repeated steps: {steps}", steps=", ".join(f"{element} ×{count}"
                                                       for element, count in result.repeated_steps.items()))


def _print_version(out: Any, summary: dict[str, Any]) -> None:
    if not summary["definition_intact"]:
        _warn_altered(out, summary["definition_id"])
    share = summary["conforming_share"]
    out("{process_id} version {version}: {cases} cases, {conforming} of them followed the model without "
        "deviation ({share}).", process_id=summary["process_id"], version=summary["version"],
        cases=summary["cases"], conforming=summary["conforming"], share=f"{share:.0%}" if share is not None else "-")
    if summary["deviations"]:
        out("Most common deviations:")
    for deviation in summary["deviations"][:10]:
        out("  {label} at {element_id}: {count}", label=deviation_label(deviation["kind"]).render(out.locale),
            element_id=deviation["element_id"] or "-", count=deviation["count"])
    if summary["repeated_steps"]:
        out("Repeated steps:")
    for step in summary["repeated_steps"]:
        out("  {element_id}: repeated in {cases} cases, at most {max_count} times in one case",
            element_id=step["element_id"], cases=step["cases"], max_count=step["max_count"])
    if summary["step_times"]:
        out("Time per step, from ready to completed:")
    for step in summary["step_times"]:
        out("  {name} [{element_id}]: completions {count}, mean {mean}, median {median}", name=step["name"] or "",
            element_id=step["element_id"], count=step["count"], mean=_duration(out, step["mean_seconds"]),
            median=_duration(out, step["median_seconds"]))


def cmd_conformance(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    if (args.case is None) == (args.process is None):
        out.error("Name either a case number or --process PROCESS_ID, not both.")
        return 2
    if args.version is not None and args.process is None:
        out.error("--version needs --process.")
        return 2
    service = _service(settings)
    if args.case is not None:
        result = case_conformance(service, args.case)
        if args.json:
            _print_json(result.as_dict(out.locale))
        else:
            _print_case(out, result)
        return 0

    if args.version is not None:
        versions = [args.version]
    else:
        versions = [definition["version"] for definition in service.list_definitions(args.process)]
        if not versions:
            service.get_definition(args.process)  # raises NotFound with the usual message
    summaries = [version_conformance(service, args.process, version) for version in versions]
    if args.json:
        _print_json(summaries)
        return 0
    for summary in summaries:
        _print_version(out, summary)
    return 0


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    replay = add("replay", cmd_replay, t("Re-run a case from its trace and report where it diverges; exit 1 if "
                                         "it does."))
    replay.add_argument("case", type=int, metavar="CASE")
    replay.add_argument("--json", action="store_true", help=t("Print the report as JSON."))
    state = add("state", cmd_state, t("Show a case as it stood just after one trace event."))
    state.add_argument("case", type=int, metavar="CASE")
    state.add_argument("--at", type=int, required=True, metavar="SEQ",
                       help=t("Number of the trace event, as `liuhen trace` lists it."))
    state.add_argument("--json", action="store_true", help=t("Print the state as JSON."))
    conformance = add("conformance", cmd_conformance, t("Check cases against their model: one case, or every "
                                                        "case of a process version."))
    conformance.add_argument("case", type=int, nargs="?", metavar="CASE")
    conformance.add_argument("--process", metavar="PROCESS_ID", help=t("Summarise the cases of this process."))
    conformance.add_argument("--version", type=int, help=t("Only this version (default: every version)."))
    conformance.add_argument("--json", action="store_true", help=t("Print the result as JSON."))
