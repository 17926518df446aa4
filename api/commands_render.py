"""`liuhen render`: draw a deployed flowchart, or a BPMN file that is not deployed, as SVG, PNG or PDF."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from diagrams import FORMATS, render
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


def cmd_render(args: argparse.Namespace, settings: Settings, out: Output) -> int:
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
    output = args.output or default_output
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
