"""Write a risk register as an Excel workbook, CSV or JSON, labelled in the reader's language.

Column titles and the names of levels and categories are translated. The BPMN text of each
checkpoint is written as the designer wrote it. Each writer builds the whole file in memory, because
a register has one row per checkpoint (32 for the shipped flowcharts), not one per case.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from engine.errors import InvalidInput
from engine.extension import RISK_CATEGORIES, RISK_LEVELS
from engine.i18n import Message, msg
from engine.register import CATEGORY_LABELS, LEVEL_LABELS, RegisterRow, RiskRegister, build_register
from engine.service import Liuhen
from engine.users import Actor

logger = logging.getLogger(__name__)

FORMATS = ("xlsx", "csv", "json")
MEDIA_TYPES = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
JSON_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Column:
    """One column of the register table: its key, its title and its width in Excel character units."""

    key: str
    title: Message
    width: float
    value: Callable[[RegisterRow, str], Any]


def _optional(text: str | None) -> str:
    return text or ""


COLUMNS = (
    Column("number", msg("No."), 6, lambda row, locale: row.number),
    Column("checkpoint_id", msg("Risk point id"), 12, lambda row, locale: row.checkpoint_id),
    Column("power_item_name", msg("Power item"), 18, lambda row, locale: row.power_item_name),
    Column("power_item_code", msg("Power item code"), 14, lambda row, locale: _optional(row.power_item_code)),
    Column("version", msg("Version"), 7, lambda row, locale: row.version),
    Column("step_name", msg("Step"), 20, lambda row, locale: row.step_name),
    Column("element_id", msg("Step id"), 20, lambda row, locale: row.element_id),
    Column("unit", msg("Unit / department"), 18, lambda row, locale: _optional(row.unit)),
    Column("lane", msg("Post"), 12, lambda row, locale: _optional(row.lane)),
    Column("category", msg("Risk category"), 14, lambda row, locale: CATEGORY_LABELS[row.category].render(locale)),
    Column("description", msg("Risk point"), 36, lambda row, locale: row.description),
    Column("manifestation", msg("Manifestation"), 36, lambda row, locale: _optional(row.manifestation)),
    Column("level", msg("Risk level"), 9, lambda row, locale: LEVEL_LABELS[row.level].render(locale)),
    Column("control_measures", msg("Control measures"), 50, lambda row, locale: row.numbered_measures()),
    Column("responsible_post", msg("Responsible post"), 14, lambda row, locale: _optional(row.responsible_post)),
    Column("supervising_leader", msg("Supervising leader"), 14,
           lambda row, locale: _optional(row.supervising_leader)),
    Column("monitoring_indicator", msg("Monitoring indicator"), 34,
           lambda row, locale: row.monitoring_indicator.render(locale)),
    Column("events", msg("Events so far"), 10, lambda row, locale: row.events),
)
_CENTERED = frozenset({"number", "version", "level", "events"})

# Fill and font colours of the level cells, as RGB hex.
LEVEL_COLOURS = {"high": ("FFC7CE", "9C0006"), "medium": ("FFEB9C", "9C5700"), "low": ("C6EFCE", "006100")}
_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
_THIN = Side(style="thin", color="A6A6A6")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)


def check_format(register_format: str, *, bom: bool = False) -> None:
    """Raise InvalidInput for an unknown format, or for a byte order mark requested for a format other than CSV."""
    if register_format not in FORMATS:
        raise InvalidInput(msg("Register format {value!r} is unknown; use one of: {allowed}.",
                               value=register_format, allowed=", ".join(FORMATS)))
    if bom and register_format != "csv":
        raise InvalidInput(msg("A byte order mark can only start a CSV register, not a {format} register.",
                               format=register_format))


def export_register(service: Liuhen, actor: Actor, register_format: str, locale: str, *,
                    process_id: str | None = None, all_versions: bool = False,
                    bom: bool = False) -> tuple[RiskRegister, bytes]:
    """Check the format, collect the register and return it with the file's bytes.

    Raises InvalidInput for a bad format, NotFound for a process that is not deployed and Forbidden
    unless the actor is an auditor, designer or administrator.
    """
    check_format(register_format, bom=bom)
    register = build_register(service, actor, process_id=process_id, all_versions=all_versions)
    content = render_register(register, register_format, locale, bom=bom)
    logger.info("risk register exported", extra={"format": register_format, "rows": len(register.rows),
                                                  "process_id": process_id, "all_versions": all_versions})
    return register, content


def render_register(register: RiskRegister, register_format: str, locale: str, *, bom: bool = False) -> bytes:
    """Write ``register`` as the bytes of an xlsx, CSV or JSON file, labelled in ``locale``."""
    check_format(register_format, bom=bom)
    if register_format == "xlsx":
        return register_xlsx(register, locale)
    if register_format == "csv":
        return register_csv(register, locale, bom=bom)
    return register_json(register, locale)


def row_values(row: RegisterRow, locale: str) -> list[Any]:
    """Return the cells of one row in column order, as CSV and the workbook write them."""
    return [column.value(row, locale) for column in COLUMNS]


# CSV and JSON

def register_csv(register: RiskRegister, locale: str, *, bom: bool = False) -> bytes:
    # NOTE: cells are written unchanged, so a spreadsheet that opens the CSV may read a cell starting
    # with "=" as a formula. The xlsx export stores such cells as text.
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.title.render(locale) for column in COLUMNS])
    for row in register.rows:
        writer.writerow(row_values(row, locale))
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")


def register_json(register: RiskRegister, locale: str) -> bytes:
    summary = register.summary()
    document = {
        "format_version": JSON_FORMAT_VERSION,
        "generated_at": register.generated_at.astimezone(UTC).isoformat(timespec="seconds"),
        "all_versions": register.all_versions,
        "process_id": register.process_id,
        "rows": [_row_json(row, locale) for row in register.rows],
        "summary": {
            "by_category": summary,
            "by_level": {level: sum(counts[level] for counts in summary.values()) for level in RISK_LEVELS},
            "total": len(register.rows),
        },
    }
    return (json.dumps(document, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _row_json(row: RegisterRow, locale: str) -> dict[str, Any]:
    return {
        "number": row.number, "checkpoint_id": row.checkpoint_id, "process_id": row.process_id,
        "definition_id": row.definition_id, "version": row.version, "power_item_code": row.power_item_code,
        "power_item_name": row.power_item_name, "step_name": row.step_name, "element_id": row.element_id,
        "lane": row.lane, "handling_body": row.handling_body, "unit": row.unit, "category": row.category,
        "category_label": CATEGORY_LABELS[row.category].render(locale), "description": row.description,
        "manifestation": row.manifestation, "level": row.level, "level_label": LEVEL_LABELS[row.level].render(locale),
        "control_measures": row.control_measures, "responsible_post": row.responsible_post,
        "supervising_leader": row.supervising_leader,
        "monitoring_indicator": row.monitoring_indicator.render(locale), "events": row.events,
        "event_counts": row.event_counts,
    }


# Excel workbook

def register_xlsx(register: RiskRegister, locale: str) -> bytes:
    """Write the register sheet and a summary sheet per risk category and level."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None  # a new Workbook always has one sheet
    sheet.title = msg("Risk register").render(locale)
    _write_rows(sheet, register, locale)
    _write_summary(workbook.create_sheet(msg("Summary").render(locale)), register, locale)
    workbook.properties.title = sheet.title
    workbook.properties.creator = "liuhen"

    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _write_rows(sheet: Worksheet, register: RiskRegister, locale: str) -> None:
    sheet.append([column.title.render(locale) for column in COLUMNS])
    for row in register.rows:
        sheet.append(row_values(row, locale))

    for cell in sheet[1]:
        _style_header(cell)
    level_column = next(index for index, column in enumerate(COLUMNS, start=1) if column.key == "level")
    for cells, row in zip(sheet.iter_rows(min_row=2), register.rows, strict=True):
        for column, cell in zip(COLUMNS, cells, strict=True):
            _keep_text(cell)
            cell.border = _BORDER
            cell.alignment = Alignment(horizontal="center" if column.key in _CENTERED else "left",
                                       vertical="top", wrap_text=True)
        _colour_level(cells[level_column - 1], row.level)

    for index, column in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = column.width
    last = get_column_letter(len(COLUMNS))
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{last}{len(register.rows) + 1}"
    # Printed ledgers: landscape, one page wide, the title row on every page.
    sheet.print_title_rows = "1:1"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True


def _write_summary(sheet: Worksheet, register: RiskRegister, locale: str) -> None:
    """Write a table of categories by levels with totals, then the selection the register covers."""
    summary = register.summary()
    total = msg("Total").render(locale)
    sheet.append([msg("Risk category").render(locale)] + [LEVEL_LABELS[level].render(locale) for level in RISK_LEVELS]
                 + [total])
    for category in RISK_CATEGORIES:
        counts = summary[category]
        sheet.append([CATEGORY_LABELS[category].render(locale)] + [counts[level] for level in RISK_LEVELS]
                     + [sum(counts.values())])
    sheet.append([total] + [sum(summary[category][level] for category in RISK_CATEGORIES) for level in RISK_LEVELS]
                 + [len(register.rows)])

    for cell in sheet[1]:
        _style_header(cell)
    for level, cell in zip(RISK_LEVELS, sheet[1][1:], strict=False):
        _colour_level(cell, level)
    for cells in sheet.iter_rows(min_row=2, max_row=len(RISK_CATEGORIES) + 2):
        for cell in cells:
            cell.border = _BORDER
    for cell in sheet[len(RISK_CATEGORIES) + 2]:
        cell.font = Font(bold=True)

    versions = msg("all deployed versions") if register.all_versions else msg("newest version of each process")
    notes = [(msg("Versions"), versions.render(locale)),
             (msg("Process"), register.process_id or msg("all processes").render(locale)),
             (msg("Exported at (UTC)"), register.generated_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))]
    sheet.append([])
    for label, value in notes:
        sheet.append([label.render(locale), value])
        _keep_text(sheet.cell(row=sheet.max_row, column=2))
    sheet.column_dimensions["A"].width = 24
    for index in range(2, len(RISK_LEVELS) + 3):
        sheet.column_dimensions[get_column_letter(index)].width = 10


def _style_header(cell: Any) -> None:
    cell.font = Font(bold=True)
    cell.fill = _HEADER_FILL
    cell.border = _BORDER
    cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _colour_level(cell: Any, level: str) -> None:
    fill, font = LEVEL_COLOURS[level]
    cell.fill = PatternFill("solid", fgColor=fill)
    cell.font = Font(bold=True, color=font)


def _keep_text(cell: Any) -> None:
    """Store text that starts with "=" as text, because openpyxl would otherwise write it as a formula."""
    if isinstance(cell.value, str) and cell.value.startswith("="):
        cell.data_type = "s"
