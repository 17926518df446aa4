"""`liuhen export xes|csv|json`: write case traces as an event log for process-mining tools."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.exports import FORMATS, ExportFilter, write_export
from engine.settings import Settings


def cmd_export(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _service

    filters = ExportFilter.parse(process=args.process, power_item=args.power_item, version=args.version,
                                 since=args.since, until=args.until, status=args.status)
    service = _service(settings)
    target = Path(args.output)
    # Write beside the target and rename at the end, so a failed export leaves no half-written file.
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            summary = write_export(service, args.format, filters, handle, bom=args.bom)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        out.error("{filename}: cannot be written: {reason}.", filename=target, reason=exc.strerror)
        return 1
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    out("Exported to {filename}: cases {cases}, events {events}.", cases=summary.cases, events=summary.events,
        filename=target)
    return 0


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    export = add("export", cmd_export, t("Export case traces as an event log (XES, CSV or JSON) for "
                                         "process-mining tools."))
    export.add_argument("format", choices=FORMATS, metavar="FORMAT", help=t("xes, csv or json."))
    export.add_argument("--output", required=True, metavar="FILE",
                        help=t("File to write; an existing file is replaced."))
    export.add_argument("--process", help=t("Only cases of this process id, such as reimbursement."))
    export.add_argument("--power-item", metavar="CODE",
                        help=t("Only cases whose power item has this code, such as JY-XK-001."))
    export.add_argument("--version", help=t("Only cases running on this version of their process."))
    export.add_argument("--since", metavar="DATE", help=t(
        "Only cases started on or after this UTC day (YYYY-MM-DD) or ISO 8601 moment."))
    export.add_argument("--until", metavar="DATE", help=t(
        "Only cases started on or before this UTC day (YYYY-MM-DD) or ISO 8601 moment."))
    export.add_argument("--status", metavar="STATUS", help=t(
        "Only cases with this status: running, completed or cancelled."))
    export.add_argument("--bom", action="store_true", help=t(
        "Start a CSV file with a UTF-8 byte order mark, so that Excel reads it as UTF-8."))
