"""`liuhen register export`: write the risk register (风险台账) as xlsx, CSV or JSON."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.register_formats import export_register
from engine.settings import Settings


def cmd_register_export(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    target = Path(args.output)
    register_format = args.format or target.suffix.lstrip(".").lower()
    if not register_format:
        out.error("{filename} has no file extension to take the format from; add --format xlsx, csv or json.",
                  filename=target)
        return 2
    service = _service(settings)
    register, content = export_register(service, _cli_actor(service, None), register_format, out.locale,
                                        process_id=args.process, all_versions=args.all_versions, bom=args.bom)
    # Write beside the target and rename at the end, so a failed write leaves no half-written file.
    partial = target.with_name(target.name + ".part")
    try:
        partial.write_bytes(content)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        out.error("{filename}: cannot be written: {reason}.", filename=target, reason=exc.strerror)
        return 1
    os.replace(partial, target)
    out("Wrote the risk register with {rows} risk checkpoints to {filename}.", rows=len(register.rows),
        filename=target)
    return 0


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    group = add("register", _no_action, t("Export the risk register: one row per risk checkpoint."))
    actions = group.add_subparsers(dest="register_action", required=True, metavar="ACTION")
    help_text = t("Write the risk register of the deployed flowcharts as an Excel workbook, CSV or JSON.")
    export = actions.add_parser("export", help=help_text, description=help_text)
    export.set_defaults(handler=cmd_register_export)
    export.add_argument("--format", metavar="FORMAT", help=t(
        "xlsx, csv or json; by default the extension of the output file."))
    export.add_argument("--output", required=True, metavar="FILE",
                        help=t("File to write; an existing file is replaced."))
    export.add_argument("--process", metavar="PROCESS_ID", help=t("Only this process, such as reimbursement."))
    export.add_argument("--all-versions", action="store_true", help=t(
        "One row per checkpoint of every deployed version; by default only the newest version of each process."))
    export.add_argument("--bom", action="store_true", help=t(
        "Start a CSV file with a UTF-8 byte order mark, so that Excel reads it as UTF-8."))


def _no_action(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    # Never runs, because argparse requires an action after `register`.
    return 2

