"""Large .xlsx files for the loader benchmark, written as XML directly (openpyxl takes about
a minute for 300,000 rows; this takes a few seconds). The cells are what Excel saves: text,
and dates as serial numbers with a date format, or a date-time format."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE = "http://schemas.openxmlformats.org/package/2006/relationships"
_SHEET_TYPE = _RELS + "/worksheet"
_CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml"
 ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml"
 ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
<Override PartName="/xl/styles.xml"
 ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>
</Types>"""
_ROOT_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{_PACKAGE}"><Relationship Id="rId1" Target="xl/workbook.xml"
 Type="{_RELS}/officeDocument"/></Relationships>"""
_WORKBOOK = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="{_MAIN}" xmlns:r="{_RELS}"><sheets>
<sheet name="Leads" sheetId="1" r:id="rId1"/></sheets></workbook>"""
_WORKBOOK_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{_PACKAGE}"><Relationship Id="rId1" Type="{_SHEET_TYPE}"
 Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="{_RELS}/styles"
 Target="styles.xml"/></Relationships>"""
# Style 1: a date (built-in format 14); style 2: a date-time (built-in format 22).
_STYLES = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<styleSheet xmlns="{_MAIN}"><fonts count="1"><font/></fonts><fills count="1"><fill/></fills>
<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>
<cellXfs count="3"><xf numFmtId="0"/><xf numFmtId="14" applyNumberFormat="1"/>
<xf numFmtId="22" applyNumberFormat="1"/></cellXfs></styleSheet>"""
_EPOCH = dt.date(1899, 12, 30)


def leads_xlsx(
    path: Path,
    count: int,
    *,
    to_shows_time: bool = False,
    error_every: int = 0,
    other_columns: int = 0,
) -> Path:
    """``count`` leads, two codes per cell, FromDate and ToDate as Excel date cells.
    ``to_shows_time``: ToDate in a date-time format (the scan marks every one of them);
    ``error_every``: a #N/A codes cell every that many rows; ``other_columns``: that many
    more text columns the job does not use (names, notes …), as a real export has."""
    start = (dt.date(2024, 1, 1) - _EPOCH).days
    end = (dt.date(2024, 6, 30) - _EPOCH).days
    end_style = 2 if to_shows_time else 1
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        archive.writestr("xl/styles.xml", _STYLES)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            others = "EFGHIJKLMNOPQRSTUVWXYZ"[:other_columns]
            last = ("ABCD" + others)[-1]
            sheet.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<worksheet xmlns="{_MAIN}"><dimension ref="A1:{last}{count + 1}"/>'
                f"<sheetData>".encode()
            )
            header = ["ProspectId", "ActivityEventList", "FromDate", "ToDate"]
            header += [f"Note {col}" for col in others]
            sheet.write(
                b'<row r="1">'
                + b"".join(
                    f'<c r="{col}1" t="inlineStr"><is><t>{name}</t></is></c>'.encode()
                    for col, name in zip("ABCD" + others, header, strict=True)
                )
                + b"</row>"
            )
            lines = []
            for n in range(count):
                row = n + 2
                codes = (
                    f'<c r="B{row}" t="e"><v>#N/A</v></c>'
                    if error_every and n % error_every == error_every - 1
                    else f'<c r="B{row}" t="inlineStr"><is><t>201;202</t></is></c>'
                )
                lines.append(
                    f'<row r="{row}"><c r="A{row}" t="inlineStr"><is><t>'
                    f"{n:08x}-0000-4000-8000-{n:012x}</t></is></c>{codes}"
                    f'<c r="C{row}" s="1"><v>{start}</v></c>'
                    f'<c r="D{row}" s="{end_style}"><v>{end}</v></c>'
                    + "".join(
                        f'<c r="{col}{row}" t="inlineStr"><is><t>{col.lower()} {n}</t></is></c>'
                        for col in others
                    )
                    + "</row>"
                )
                if len(lines) == 10_000:
                    sheet.write("".join(lines).encode())
                    lines = []
            sheet.write(("".join(lines) + "</sheetData></worksheet>").encode())
    return path
