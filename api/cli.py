"""The `liuhen` command line. Output is in Chinese unless LIUHEN_LOCALE or --lang selects English."""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from api import cli_texts
from api.cli_times import SECONDS, local_time
from engine import supervision
from engine.clock import ManualClock
from engine.errors import LiuhenError
from engine.i18n import normalize_locale, translate
from engine.service import Liuhen
from engine.settings import Settings
from engine.users import SYSTEM_ACTOR, Actor, get_actor

logger = logging.getLogger("liuhen")

# The exit status a shell reports for a process that SIGPIPE ended (128 + 13).
EXIT_BROKEN_PIPE = 141

# Modules that add more subcommands; each has register(add, t), where add(name, handler, help) returns
# the subparser and t translates help text. Handlers take (args, settings, out) and return an exit code.
COMMAND_MODULES: tuple[str, ...] = ("api.commands_admin", "api.commands_publish", "api.commands_export",
                                    "api.commands_audit", "api.commands_replay", "api.commands_render",
                                    "api.commands_register", "api.commands_calendar", "api.commands_statistics",
                                    "api.commands_controls", "api.commands_supervision", "api.commands_versions",
                                    "api.commands_users")


class Output:
    """Prints translated lines; every user-facing CLI text goes through here."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def __call__(self, msgid: str, **params: Any) -> None:
        print(translate(self.locale, msgid, **params))

    def text(self, msgid: str, **params: Any) -> str:
        return translate(self.locale, msgid, **params)

    def error(self, msgid: str, **params: Any) -> None:
        print(translate(self.locale, msgid, **params), file=sys.stderr)


def _service(settings: Settings, clock: Any = None, check: bool = True) -> Liuhen:
    service = Liuhen(settings, clock=clock)
    if check:
        service.db.check_migrated()
    return service


def _cli_actor(service: Liuhen, username: str | None) -> Actor:
    if username is None:
        # Local command-line access is administrator access; record the operating-system user too.
        return Actor(f"cli:{getpass.getuser()}", "command line", frozenset({"admin", "designer"}))
    with service.db.read() as conn:
        actor = get_actor(conn, username, active_only=True)
        deactivated = actor is None and get_actor(conn, username) is not None
    if deactivated:
        raise LiuhenError(_message("User {username} is deactivated; `liuhen user reactivate {username}` lets them "
                                   "act again.", username=username))
    if actor is None:
        raise LiuhenError(_message("User {username} does not exist.", username=username))
    return actor


def _message(msgid: str, **params: Any) -> Any:
    from engine.i18n import msg

    return msg(msgid, **params)


def cmd_migrate(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    from engine.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url())
    out("Database {url} is migrated to the newest schema.", url=_safe_url(settings))
    return 0


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url()).render_as_string(hide_password=True)


def cmd_deploy(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    actor = _cli_actor(service, args.as_user)
    failed = 0
    for path in _bpmn_paths(args.files):
        try:
            deployment = service.deploy_file(path.read_bytes(), path.name, actor)
        except OSError as exc:
            failed += 1
            out.error("{filename}: cannot be read: {reason}.", filename=path, reason=exc.strerror)
            continue
        except LiuhenError as exc:
            failed += 1
            out.error("{filename}: {message}", filename=path, message=exc.render(out.locale))
            continue
        for result in deployment.processes:
            if result.created:
                out("{filename}: deployed {process_id} as version {version}.", filename=path.name,
                    process_id=result.process_id, version=result.version)
            else:
                out("{filename}: {process_id} is already deployed as version {version} with identical content; "
                    "nothing changed.", filename=path.name, process_id=result.process_id, version=result.version)
        if deployment.warnings:
            out("{filename}: validation warnings: {count}; `liuhen validate {path}` lists them.", filename=path.name,
                count=len(deployment.warnings), path=path)
    return 1 if failed else 0


def _bpmn_paths(names: list[str]) -> list[Path]:
    paths = []
    for name in names:
        path = Path(name)
        paths.extend(sorted(path.glob("*.bpmn")) if path.is_dir() else [path])
    return paths


def cmd_validate(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    from api.findings_output import print_findings, report_json

    service = Liuhen(settings)
    failed = 0
    documents = []
    for path in _bpmn_paths(args.files):
        try:
            report = service.validation_report(path.read_bytes(), path.name)
        except OSError as exc:
            failed += 1
            out.error("{filename}: cannot be read: {reason}.", filename=path, reason=exc.strerror)
            continue
        failed += 0 if report.valid else 1
        if args.json:
            documents.append(report_json(report, out.locale))
        elif report.valid and report.parsed is not None:
            out("{filename}: valid; processes: {processes}.", filename=path.name,
                processes=", ".join(p.process_id for p in report.parsed.processes))
            print_findings(report, out.locale)
        else:
            out.error("{filename}: errors: {errors}, warnings: {warnings}; the file cannot be deployed.",
                      filename=path, errors=len(report.errors), warnings=len(report.warnings))
            print_findings(report, out.locale, sys.stderr)
    if args.json:
        print(json.dumps(documents, ensure_ascii=False, indent=2))
    return 1 if failed else 0


def cmd_cases(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    rows = service.list_cases(status=args.status, process_id=args.process, limit=args.limit)
    if not rows:
        out("No cases.")
        return 0
    for case in rows:
        out("Case {id}  {status}  {process_name} (v{version})  {title}  started by {started_by} at {started_at}",
            id=case["id"], status=out.text(case["status"]), process_name=case["process_name"],
            version=case["version"], title=case["title"] or "", started_by=case["started_by"],
            started_at=local_time(case["started_at"]))
    return 0


def cmd_tasks(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    actor = _cli_actor(service, args.as_user)
    scope = "mine" if args.as_user else "all"
    rows = service.list_tasks(actor, scope=scope, case_id=args.case)
    if not rows:
        out("No open tasks.")
        return 0
    from api.commands_supervision import card_text, days_left_text

    for task in rows:
        out("Task {id}  case {case_id}  {name} [{element_id}]  post: {lane}  {status}{assignee}",
            id=task["id"], case_id=task["case_id"], name=task["name"] or "", element_id=task["element_id"],
            lane=task["lane"] or "-", status=out.text(task["status"]),
            assignee=f" ({task['assignee']})" if task["assignee"] else "")
        if task.get("due_at") is not None:
            # The task's step clock, or else its case's most urgent open clock, as the web task list shows it.
            out("  {card}  due {due_at}, {left}", card=card_text(out, task.get("card") or "none"),
                due_at=local_time(task["due_at"]), left=days_left_text(out, task.get("days_left")))
    return 0


def cmd_task(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    task = service.get_task(args.task)
    out("Task {id}  case {case_id}  {name} [{element_id}]  post: {lane}  {status}", id=task["id"],
        case_id=task["case_id"], name=task["name"] or "", element_id=task["element_id"], lane=task["lane"] or "-",
        status=out.text(task["status"]))
    if not task["form_fields"]:
        out("This step declares no form fields; any JSON object is accepted.")
    for field in task["form_fields"]:
        options = ", ".join(f"{o['value']}={o['label']}" for o in field["options"])
        out("  {name} ({label}): {type}{required}{options}", name=field["name"], label=field["label"],
            type=field["type"], required=out.text(", required") if field["required"] else "",
            options=f" [{options}]" if options else "")
    for checkpoint in task["risk_checkpoints"]:
        out("  Risk checkpoint {id} ({level}): {description}", id=checkpoint["id"],
            level=out.text(checkpoint["level"]), description=checkpoint["description"])
    return 0


def json_object(raw: str | None, out: Output) -> dict[str, Any] | None:
    """Parse a --data option as a JSON object; print why and return None when it is not one."""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError as exc:
        out.error("--data is not valid JSON: {reason}. Example: --data '{{\"amount\": 260}}'.", reason=str(exc))
        return None
    if not isinstance(data, dict):
        out.error("--data must be a JSON object such as '{{\"amount\": 260}}'.")
        return None
    return data


def cmd_complete(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    actor = _cli_actor(service, args.as_user)
    data = json_object(args.data, out)
    if data is None:
        return 2
    case = service.complete(args.task, actor, data)
    out("Task {task} completed. Case {case_id} is now {status}.", task=args.task, case_id=case["id"],
        status=out.text(case["status"]))
    for task in case["tasks"]:
        if task["status"] in ("ready", "claimed"):
            out("  next: {name} [{element_id}] task {id}, post {lane}", name=task["name"] or "",
                element_id=task["element_id"], id=task["id"], lane=task["lane"] or "-")
    return 0


def cmd_start(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    actor = _cli_actor(service, args.as_user)
    data = json_object(args.data, out)
    if data is None:
        return 2
    case = service.start_case(args.process, actor, data, args.title, args.version)
    out("Started case {case_id} of {process_id} version {version}.", case_id=case["id"],
        process_id=case["process_id"], version=case["version"])
    return 0


def cmd_trace(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    events = service.case_trace(args.case)
    if args.json:
        print(json.dumps(events, ensure_ascii=False, indent=2))
        return 0
    for event in events:
        out("#{seq}  {at}  {kind}  {element_id}  by {actor}  {hash}", seq=event["seq"],
            at=local_time(event["at"], SECONDS),
            kind=out.text(event["kind"]), element_id=event["element_id"] or "", actor=event["actor"],
            hash=event["hash"][:12])
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    reports = service.verify(args.case)
    bad = [r for r in reports if not r.ok]
    for report in bad:
        assert report.finding is not None
        out.error("FAILED {stream}: {message}", stream=report.stream, message=report.finding.message.render(out.locale))
    events = sum(r.events for r in reports)
    if bad:
        out.error("Verification failed: {bad} of {streams} trace streams were altered.", bad=len(bad),
                  streams=len(reports))
        return 1
    out("Verified {streams} trace streams with {events} events: no event was altered, removed, inserted or "
        "reordered.", streams=len(reports), events=events)
    return 0


def cmd_setup(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    """Migrate, deploy the shipped flowcharts and seed the demo users; safe to run again."""
    from api.demo import seed_users

    cmd_migrate(args, settings, out)
    service = _service(settings)
    processes = settings.processes_dir
    args.files = [str(processes)]
    args.as_user = None
    status = cmd_deploy(args, settings, out)
    users_file = processes / "demo-users.json"
    if users_file.exists():
        seed_users(service, users_file)
        out("Demo users are in place ({count}).", count=len(json.loads(users_file.read_text(encoding="utf-8"))))
    return status


def _element_name(service: Liuhen, case_id: int, element_id: str | None) -> str:
    """Name a flow node of a case's flowchart as people read it, falling back to its id."""
    if element_id is None:
        return "-"
    node = service.definition_nodes(service.get_case(case_id)["definition_id"]).get(element_id)
    return (node or {}).get("name") or element_id


def cmd_demo(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    from api.demo import load_json, run_scenario, scenario_files, total_advance

    documents = [load_json(path) for path in scenario_files(settings.processes_dir)]
    span = sum((total_advance(d) for d in documents), start=datetime.min - datetime.min)
    clock = ManualClock(datetime.now(UTC) - span)
    service = _service(settings, clock=clock)
    failed = 0
    # Finished cases first, then the cases left waiting, so that the clock has run past their time limits.
    runs = [(document["process_id"], scenario) for document in documents for scenario in document["scenarios"]]
    runs += [(document["process_id"], scenario) for document in documents
             for scenario in document.get("open_cases", [])]
    for process_id, scenario in runs:
        result = run_scenario(service, clock, process_id, scenario)
        title = scenario.get("title", scenario["name"])
        if result.ok and result.expected_waiting is not None:
            out("Case {case_id}: {process_id} / {title}: waits at {step}.", case_id=result.case_id,
                process_id=result.process_id, title=title,
                step=_element_name(service, result.case_id, result.expected_waiting))
        elif result.ok:
            out("Case {case_id}: {process_id} / {title}: reached {end}.", case_id=result.case_id,
                process_id=result.process_id, title=title,
                end=_element_name(service, result.case_id, result.end_element_id))
        elif result.expected_waiting is not None:
            failed += 1
            out.error("Case {case_id}: {process_id} / {title}: is {status} and waits at {waiting}, expected to wait "
                      "at {expected}.", case_id=result.case_id, process_id=result.process_id, title=title,
                      status=result.status, waiting=", ".join(result.waiting_at) or "-",
                      expected=result.expected_waiting)
        else:
            failed += 1
            out.error("Case {case_id}: {process_id} / {title}: ended as {status} at {end}, expected {expected}.",
                      case_id=result.case_id, process_id=result.process_id, title=title, status=result.status,
                      end=result.end_element_id, expected=result.expected_end)
    raised = supervision.check_deadlines(service, SYSTEM_ACTOR)
    yellow = sum(1 for card in raised if card.colour == "yellow")
    out("Raised cards for the cases past their time limits: {yellow} yellow, {red} red.", yellow=yellow,
        red=len(raised) - yellow)
    return 1 if failed else 0


def cmd_fire_timers(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    moved = service.fire_due_timers(SYSTEM_ACTOR)
    out("Fired due timers; cases moved on: {count}.", count=len(moved))
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    from datetime import timedelta

    from engine.worker import WorkerState, run_forever, run_round

    service = _service(settings)
    every = timedelta(minutes=args.checkpoint_every) if args.checkpoint_every else None
    state = WorkerState(checkpoint_every=every)
    if args.once:
        moved = run_round(service, state)
        out("Fired due timers; cases moved on: {count}.", count=len(moved))
        return 0
    logging.getLogger("engine").setLevel(logging.INFO)
    out("The worker fires due timers every {seconds} seconds; stop it with Ctrl+C.", seconds=args.interval)
    run_forever(service, state, args.interval)
    return 0


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def cmd_serve(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    import uvicorn

    from api.app import create_app

    service = _service(settings)
    app = create_app(settings, service)
    host, port = args.host or settings.host, args.port or settings.port
    if not _port_free(host, port):
        out.error("Port {port} on {host} is already in use; stop the other server or choose another port "
                  "with --port or LIUHEN_PORT.", host=host, port=port)
        return 1
    out("liuhen is serving on http://{host}:{port}/ (API documentation: http://{host}:{port}/docs)",
        host=host, port=port)
    users_file = settings.processes_dir / "demo-users.json"
    if users_file.exists() and not args.quiet:
        out("Demo logins (username / password / roles / posts):")
        for user in json.loads(users_file.read_text(encoding="utf-8")):
            print(f"  {user['username']} / {user['password']} / {','.join(user['roles'])} / "
                  f"{','.join(user.get('posts', [])) or '-'}")
    uvicorn.run(app, host=host, port=port, log_level="info")
    return 0


def build_parser(out: Output) -> argparse.ArgumentParser:
    t = out.text
    parser = cli_texts.ArgumentParser(prog="liuhen", description=t(
        "liuhen: BPMN engine for power-operation flowcharts with integrity-risk checkpoints."))
    parser.add_argument("--lang", help=t("Output language: zh_CN (default) or en."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        return command

    add("migrate", cmd_migrate, t("Create or upgrade the database schema."))
    add("setup", cmd_setup, t("Migrate, deploy the shipped flowcharts and create the demo users."))
    serve = add("serve", cmd_serve, t("Serve the HTTP API."))
    serve.add_argument("--host", help=t("Address to listen on (default 127.0.0.1)."))
    serve.add_argument("--port", type=int, help=t("Port to listen on (default 8000)."))
    serve.add_argument("--quiet", action="store_true", help=t("Do not print the demo logins."))
    deploy = add("deploy", cmd_deploy, t("Deploy BPMN files (or every .bpmn file in a folder)."))
    deploy.add_argument("files", nargs="+", metavar="FILE")
    deploy.add_argument("--as", dest="as_user", help=t("Record the deployment as this user."))
    validate = add("validate", cmd_validate, t("Check BPMN files without deploying them and list every finding."))
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.add_argument("--json", action="store_true", help=t("Print the findings of every file as JSON."))
    cases = add("cases", cmd_cases, t("List cases, newest first."))
    cases.add_argument("--status", choices=["running", "completed", "cancelled"])
    cases.add_argument("--process", help=t("Only cases of this process id."))
    cases.add_argument("--limit", type=int, default=50, help=t("Maximum number of cases to list."))
    tasks = add("tasks", cmd_tasks, t("List open tasks (all, or those of one user with --as)."))
    tasks.add_argument("--as", dest="as_user", help=t("List the tasks this user may take."))
    tasks.add_argument("--case", type=int, help=t("Only tasks of this case."))
    task = add("task", cmd_task, t("Show one task with its form fields and risk checkpoints."))
    task.add_argument("task", metavar="TASK_ID")
    start = add("start", cmd_start, t("Start a case of a deployed process."))
    start.add_argument("process", metavar="PROCESS_ID")
    start.add_argument("--as", dest="as_user", required=True, help=t("The user who starts the case."))
    start.add_argument("--title", help=t("A title for the case."))
    start.add_argument("--version", type=int, help=t("Version to start (default: newest)."))
    start.add_argument("--data", help=t("Start data as a JSON object."))
    complete = add("complete", cmd_complete, t("Complete a task with form data."))
    complete.add_argument("task", metavar="TASK_ID")
    complete.add_argument("--as", dest="as_user", required=True, help=t("The user who completes the task."))
    complete.add_argument("--data", help=t("Form data as a JSON object."))
    trace_cmd = add("trace", cmd_trace, t("Print the trace of a case."))
    trace_cmd.add_argument("case", type=int, metavar="CASE")
    trace_cmd.add_argument("--json", action="store_true", help=t("Print the raw events as JSON."))
    verify = add("verify", cmd_verify, t("Verify the hash chains of one case or of all traces."))
    verify.add_argument("case", type=int, nargs="?", metavar="CASE")
    add("demo", cmd_demo, t("Run the sample cases of every shipped flowchart."))
    add("fire-timers", cmd_fire_timers, t("Fire every timer that is due now."))
    worker = add("worker", cmd_worker, t("Fire due timers and create checkpoints on a schedule."))
    worker.add_argument("--interval", type=float, default=10.0, help=t("Seconds between rounds (default 10)."))
    worker.add_argument("--checkpoint-every", type=float, metavar="MINUTES",
                        help=t("Create a signed trace checkpoint every this many minutes."))
    worker.add_argument("--once", action="store_true", help=t("Run one round and exit."))
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(add, t)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader closed the pipe early, as `liuhen cases | head -3` does. Point stdout at the null device so
        # the interpreter's final flush does not fail again, and exit like a process that SIGPIPE ended.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    lang = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--lang"), None)
    try:
        settings = Settings(locale=lang) if lang else Settings()
    except ValueError as exc:
        print(translate(None, "Invalid settings: {reason}", reason=str(exc)), file=sys.stderr)
        return 2
    out = Output(normalize_locale(settings.locale))
    cli_texts.install(out.locale)
    args = build_parser(out).parse_args(argv)
    try:
        return args.handler(args, settings, out)
    except LiuhenError as exc:
        out.error("Error: {message}", message=exc.render(out.locale))
        return 1


if __name__ == "__main__":
    sys.exit(main())
