"""The editable copy of a letter (.docx), made from the same rendered HTML as the PDF.

Addressees and prosecutors ask for a signed PDF *and* an editable Word copy (LEGAL.md §3.7 B).
The letter's HTML comes from cointrail's own layout (`_letter.html.j2`) and the templates'
bodies, which use a small set of elements: headings (h1, h2), paragraphs, line breaks, lists,
tables, bold text and monospaced spans (addresses, txids), and the draft banner. This module
walks that HTML (the standard library's parser) and writes the same structure with python-docx:
Word headings, paragraphs, bulleted lists, tables with a grid, bold and monospaced runs. Style
sheets, scripts and the head are skipped. Anything else is kept as its text, so no content of a
letter is ever dropped.
"""

from __future__ import annotations

import io
import re
import zipfile
from html.parser import HTMLParser
from typing import Any

from docx import Document
from docx.shared import Pt, RGBColor

_SPACE = re.compile(r"\s+")
_BLOCKS = {"p", "div", "h1", "h2", "h3", "li", "title"}
_SKIP = {"style", "script", "head", "title"}
MONO = "DejaVu Sans Mono"


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.doc: Any = Document()
        normal = self.doc.styles["Normal"]
        normal.font.name = "DejaVu Serif"
        normal.font.size = Pt(10.5)
        self._skip = 0
        self._bold = 0
        self._mono = 0
        self._para: Any = None
        self._para_kind = ""
        self._draft = False
        self._table: Any = None
        self._row: list[list[tuple[str, bool, bool]]] = []
        self._cell: Any = None
        self._header_cell = False
        self._in_cell = False
        self._mono_cell = False
        self._cell_text: list[tuple[str, bool, bool]] = []
        self._mono_stack: list[bool] = []
        self._pending_space = False

    # -- paragraphs ------------------------------------------------------------------------

    def _new_para(self, kind: str, classes: set[str]) -> None:
        plain = kind in ("p", "div")
        if plain and self._para is not None and self._para_kind in ("p", "div") \
                and not self._para.runs:
            # a block opened inside an empty one (nested divs): one paragraph, not two
            self._draft = self._draft or "draft" in classes
            return
        if self._cell is not None:
            # inside a table cell: the first block reuses the cell's own paragraph
            first = self._cell.paragraphs[0]
            self._para = first if not first.text else self._cell.add_paragraph()
        elif kind == "h1":
            self._para = self.doc.add_heading(level=1)
        elif kind in ("h2", "h3"):
            self._para = self.doc.add_heading(level=2)
        elif kind == "li":
            self._para = self.doc.add_paragraph(style="List Bullet")
        else:
            self._para = self.doc.add_paragraph()
        self._para_kind = kind
        self._draft = "draft" in classes
        if "small" in classes:
            self._para.paragraph_format.space_after = Pt(2)
        self._pending_space = False

    def _text(self, text: str) -> None:
        if not text:
            return
        if self._para is None:
            if not text.strip():
                return
            self._new_para("p", set())
        lead = text[:1].isspace()
        words = _SPACE.sub(" ", text).strip()
        if not words:
            self._pending_space = bool(self._para.runs)
            return
        if (lead or self._pending_space) and self._para.runs:
            words = " " + words
        self._pending_space = text[-1:].isspace()
        run = self._para.add_run(words)
        if self._bold:
            run.bold = True
        if self._mono:
            run.font.name = MONO
            run.font.size = Pt(8)
        if self._draft:
            run.bold = True
            run.font.color.rgb = RGBColor(0xBB, 0x00, 0x00)

    # -- parser callbacks --------------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
            return
        if self._skip:
            return
        classes = set((dict(attrs).get("class") or "").split())
        if tag == "table":
            self._table = None  # created with the first row, when the width is known
            self._row = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._row.append([])
            self._header_cell = tag == "th"
            self._cell_text = []
            self._in_cell = True
            self._mono_cell = "mono" in classes
        elif tag in _BLOCKS:
            if self._in_cell:
                self._cell_text.append(("\n", False, False))
            else:
                self._new_para(tag, classes)
        elif tag == "br":
            if self._in_cell:
                self._cell_text.append(("\n", False, False))
            elif self._para is not None:
                self._para.add_run().add_break()
                self._pending_space = False
        elif tag in ("strong", "b"):
            self._bold += 1
        elif tag in ("span", "code"):
            mono = "mono" in classes
            self._mono += mono
            self._mono_stack.append(mono)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(self._skip - 1, 0)
            return
        if self._skip:
            return
        if tag in ("td", "th"):
            self._in_cell = False
            self._header_cell = False
            self._row[-1] = self._cell_text
        elif tag == "tr":
            self._flush_row()
        elif tag == "table":
            self._table = None
        elif tag in _BLOCKS and not self._in_cell and self._para is not None \
                and self._para.runs:
            self._para = None
            self._draft = False
        elif tag in ("strong", "b"):
            self._bold = max(self._bold - 1, 0)
        elif tag in ("span", "code") and self._mono_stack and self._mono_stack.pop():
            self._mono = max(self._mono - 1, 0)

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_cell:
            self._cell_text.append((data, bool(self._bold or self._header_cell),
                                    bool(self._mono or self._mono_cell)))
            return
        self._text(data)

    # -- tables ------------------------------------------------------------------------------

    def _flush_row(self) -> None:
        cells = self._row
        self._row = []
        if not cells:
            return
        if self._table is None or len(self._table.columns) < len(cells):
            self._table = self.doc.add_table(rows=0, cols=len(cells))
            self._table.style = "Table Grid"
        row = self._table.add_row()
        for cell, pieces in zip(row.cells, cells, strict=False):
            para = cell.paragraphs[0]
            first = True
            for text, bold, mono in pieces:
                if text == "\n":
                    if para.runs:
                        para = cell.add_paragraph()
                    continue
                words = _SPACE.sub(" ", text)
                if first:
                    words = words.lstrip()
                if not words.strip() and not para.runs:
                    continue
                first = False
                run = para.add_run(words)
                run.bold = bold or None
                run.font.size = Pt(8)
                if mono:
                    run.font.name = MONO


def html_to_docx(html: str, *, title: str = "") -> bytes:
    """A .docx of a letter's HTML (see the module docstring for what is kept)."""
    builder = _Builder()
    if title:
        builder.doc.core_properties.title = title
    builder.feed(html)
    builder.close()
    out = io.BytesIO()
    builder.doc.save(out)
    return _fixed_zip(out.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """The same package with every member dated 1980-01-01, so one letter always gives the
    same bytes (and the same SHA-256 in the custody log) whenever it is written."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = info.external_attr
            dst.writestr(member, src.read(info.filename))
    return out.getvalue()
