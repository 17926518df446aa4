"""Run Graphviz's ``dot`` on a diagram and return SVG, PNG or PDF bytes."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from collections.abc import Mapping
from typing import Literal, get_args

from diagrams.errors import RendererError
from diagrams.graph import build_dot
from diagrams.reader import read_diagram
from engine.i18n import msg

logger = logging.getLogger(__name__)

DiagramFormat = Literal["svg", "png", "pdf"]
FORMATS: tuple[str, ...] = get_args(DiagramFormat)
MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png", "pdf": "application/pdf"}

# Graphviz output format per diagram format. PNG and PDF go through cairo and pango, which find fonts
# with fontconfig and fall back to another font for a missing glyph; SVG names the font for the viewer.
_DOT_FORMATS = {"svg": "svg", "png": "png:cairo", "pdf": "pdf:cairo"}
# Upper bound on one dot run, in seconds. It guards a request against a pathological layout, and is far
# above the few seconds that the largest real-world test files take.
DEFAULT_TIMEOUT_SECONDS = 120.0
_INSTALL_HINT = "apt-get install -y graphviz fonts-noto-cjk"


def render(content: bytes, filename: str, fmt: str, locale: str, *,
                timeout: float = DEFAULT_TIMEOUT_SECONDS) -> bytes:
    """Draw the BPMN file ``content`` as ``fmt`` (one of FORMATS) with labels in ``locale``.

    Every process and pool of the file is drawn. Raises DiagramInputError when the file is not BPMN
    XML, RendererError when Graphviz is missing, fails or runs longer than ``timeout`` seconds, and
    ValueError for a format not in FORMATS.
    """
    diagram = read_diagram(content, filename)
    source = build_dot(diagram, locale)
    started = time.monotonic()
    output = run_dot(source, fmt, timeout=timeout)
    logger.debug("rendered diagram", extra={"bpmn_file": filename, "format": fmt, "shapes": len(diagram.shapes),
                                            "seconds": round(time.monotonic() - started, 3)})
    return output


def run_dot(source: str, fmt: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
            environment: Mapping[str, str] | None = None) -> bytes:
    """Lay out the DOT ``source`` with ``dot`` and return the output in ``fmt``.

    ``environment`` replaces the process environment of ``dot``; tests use it to point fontconfig at
    another set of fonts.
    """
    if fmt not in _DOT_FORMATS:
        raise ValueError(f"unknown diagram format {fmt!r}; use one of {', '.join(FORMATS)}")
    executable = shutil.which("dot")
    if executable is None:
        raise RendererError(msg("Graphviz is not installed, so diagrams cannot be drawn. Install it with "
                                "`{command}` (or `make system-packages`) and try again.", command=_INSTALL_HINT))
    try:
        completed = subprocess.run([executable, f"-T{_DOT_FORMATS[fmt]}"], input=source.encode("utf-8"),
                                   capture_output=True, timeout=timeout, check=False,
                                   env=dict(environment) if environment is not None else None)
    except subprocess.TimeoutExpired as exc:
        raise RendererError(msg("Graphviz did not finish the diagram within {seconds} seconds; the diagram may "
                                "be too large to lay out. Split it into smaller processes.",
                                seconds=int(timeout))) from exc
    except OSError as exc:
        raise RendererError(msg("Graphviz could not be started: {reason}. Check the installation with "
                                "`{command}`.", reason=exc.strerror or str(exc), command=_INSTALL_HINT)) from exc

    stderr = completed.stderr.decode("utf-8", "replace").strip()
    if completed.returncode != 0 or not completed.stdout:
        logger.warning("dot failed", extra={"returncode": completed.returncode, "stderr": stderr[:2000]})
        raise RendererError(msg("Graphviz failed to draw the diagram (exit status {status}): {reason}",
                                status=completed.returncode, reason=stderr.splitlines()[-1] if stderr else "-"))
    if stderr:
        logger.debug("dot warnings: %s", stderr[:2000])
    return completed.stdout
