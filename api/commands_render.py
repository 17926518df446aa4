"""`liuhen render`: draw a deployed flowchart, or a BPMN file that is not deployed, as SVG, PNG or PDF.

With ``--case`` it draws the path one case took on its flowchart; with ``--heatmap`` it draws a
version with figures over all its cases.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from api.overlay_rendering import case_diagram, version_heatmap
from diagrams import FORMATS, render
from diagrams.heatmap import MEASURES
from diagrams.overlay import DEFAULT_TIMEZONE, parse_timezone
from engine.service import Liuhen
from engine.settings import Settings

if TYPE_CHECKING:
    from api.cli import Output


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[..., str]) -> None:
    render = add("render", cmd_render, t("Draw a deployed flowchart or a BPMN file as SVG, PNG or PDF."))
    render.add_argument("process", nargs="?", metavar="PROCESS[@VERSION]",
                        help=t("Deployed process id, optionally with @VERSION (default: newest version)."))
    render.add_argument("--file", type=Path, help=t("Draw this BPMN file instead of a deployed process."))
    render.add_argument("--format", choices=FORMATS,
                        help=t("Output format (default: from the --output suffix, else svg)."))
    render.add_argument("--output", "-o",
                        help=t("File to write, or - for standard output (default: PROCESS-vVERSION.FORMAT "
                               "or the file name with the format's suffix)."))
    render.add_argument("--case", type=int, metavar="CASE",
                        help=t("Draw the path this case took on the flowchart version it runs on."))
    render.add_argument("--heatmap", action="store_true",
                        help=t("Draw PROCESS@VERSION with how often each step and flow was taken over all its "
                               "cases, the average time per step and the risk events per step."))
    render.add_argument("--heat-by", choices=MEASURES, default=None,
                        help=t("Measure that fills the steps of a heat map: visits (default), time or risk."))
    render.add_argument("--timezone", default=DEFAULT_TIMEZONE,
                        help=t("IANA time zone of the times on a case path (default: Asia/Shanghai)."))


def cmd_render(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    if args.case is not None or args.heatmap or args.heat_by:
        return _render_overlay(args, settings, out)
    if (args.process is None) == (args.file is None):
        out.error("Give either a deployed process (PROCESS[@VERSION]) or --file FILE, but not both.")
        return 2
    fmt = args.format or _format_from_suffix(args.output) or "svg"

    if args.file is not None:
        try:
            content = args.file.read_bytes()
        except OSError as exc:
            out.error("{filename}: cannot be read: {reason}.", filename=args.file, reason=exc.strerror)
            return 1
        filename, default_output = args.file.name, args.file.with_suffix(f".{fmt}").name
    else:
        process_id, version = _process_and_version(args.process)
        if process_id is None:
            out.error("{value} is not of the form PROCESS or PROCESS@VERSION, where VERSION is a whole number "
                      "from 1 up.", value=args.process)
            return 2
        service = Liuhen(settings)
        service.db.check_migrated()
        definition = service.get_definition(process_id, version)
        filename, content = service.definition_content(process_id, definition["version"])
        default_output = f"{process_id}-v{definition['version']}.{fmt}"

    image = render(content, filename, fmt, out.locale)
    return _write(image, args.output or default_output, out)


def _render_overlay(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    """Draw a case path (--case) or a heat map (--heatmap) of a deployed flowchart."""
    fmt = args.format or _format_from_suffix(args.output) or "svg"
    if args.file is not None:
        out.error("--case and --heatmap draw deployed flowcharts only; leave out --file.")
        return 2
    if args.case is not None and (args.heatmap or args.heat_by or args.process is not None):
        out.error("--case draws one case on its own version; leave out PROCESS, --heatmap and --heat-by.")
        return 2
    service = Liuhen(settings)
    service.db.check_migrated()

    if args.case is not None:
        image = case_diagram(service, args.case, fmt, out.locale, parse_timezone(args.timezone))
        return _write(image, args.output or f"case-{args.case}.{fmt}", out)
    if not args.heatmap:
        out.error("--heat-by applies to heat maps only; add --heatmap.")
        return 2
    if args.process is None:
        out.error("--heatmap needs a deployed process: give PROCESS[@VERSION].")
        return 2
    process_id, version = _process_and_version(args.process)
    if process_id is None:
        out.error("{value} is not of the form PROCESS or PROCESS@VERSION, where VERSION is a whole number "
                  "from 1 up.", value=args.process)
        return 2
    version = version or service.get_definition(process_id)["version"]
    image = version_heatmap(service, process_id, version, fmt, out.locale, args.heat_by or "visits")
    return _write(image, args.output or f"{process_id}-v{version}-heatmap.{fmt}", out)


def _write(image: bytes, output: str, out: Output) -> int:
    """Write ``image`` to the file ``output``, or to standard output for ``-``."""
    if output == "-":
        sys.stdout.buffer.write(image)
        sys.stdout.buffer.flush()
        return 0
    try:
        Path(output).write_bytes(image)
    except OSError as exc:
        out.error("{filename}: cannot be written: {reason}.", filename=output, reason=exc.strerror)
        return 1
    out("Wrote {filename} ({size} bytes).", filename=output, size=len(image))
    return 0


def _format_from_suffix(output: str | None) -> str | None:
    if not output or output == "-":
        return None
    suffix = Path(output).suffix.lower().lstrip(".")
    return suffix if suffix in FORMATS else None


def _process_and_version(value: str) -> tuple[str | None, int | None]:
    """Split ``PROCESS@VERSION``; return (None, None) when the version is not a positive whole number."""
    process_id, separator, version = value.partition("@")
    if not process_id:
        return None, None
    if not separator:
        return process_id, None
    if not version.isdigit() or int(version) < 1:
        return None, None
    return process_id, int(version)
