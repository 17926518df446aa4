"""Write the public pages as a static site that a government web server can host as it is."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from api.pages import format_limit, templates, translator
from engine import publication
from engine.service import Liuhen

STATIC_DIR = Path(__file__).parent / "static"


def write_site(service: Liuhen, output: Path, locale: str) -> list[Path]:
    """Write index.html, one page, SVG and PDF per published external flowchart, and the stylesheet."""
    from api.diagram_files import render_diagram

    items = publication.published_items(service, kind="external")
    (output / "items").mkdir(parents=True, exist_ok=True)
    (output / "static").mkdir(exist_ok=True)
    shutil.copyfile(STATIC_DIR / "site.css", output / "static" / "site.css")
    written = [output / "static" / "site.css"]

    def page(template: str, target: Path, prefix: str, **context: Any) -> None:
        html = templates.get_template(template).render(
            t=translator(locale), locale=locale, lang_query="",
            format_limit=lambda limit: format_limit(limit, locale), static_site=True, static_prefix=f"{prefix}static",
            home=f"{prefix}index.html", actor=None, **context)
        target.write_text(html, encoding="utf-8")
        written.append(target)

    page("catalogue.html", output / "index.html", "", items=items,
         item_link=lambda item: f"items/{item.process_id}.html")
    for item in items:
        for extension in ("svg", "pdf"):
            target = output / "items" / f"{item.process_id}.{extension}"
            target.write_bytes(render_diagram(service, item.process_id, item.version, extension, locale))
            written.append(target)
        page("item.html", output / "items" / f"{item.process_id}.html", "../", item=item,
             diagram_base=item.process_id)
    return written
