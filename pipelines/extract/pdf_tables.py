"""Tables in born-digital PDFs, rebuilt from their ruling lines with pdfplumber.

pypdf's text layer runs a table's cells together ("name maintainer team svc0 alice infra ..."), so which
cell is whose is lost and the chunker cannot repeat a header row it cannot see. pdfplumber rebuilds the
grid from the lines drawn around the cells (its ``lines`` strategy). Only ruled tables are found, which
is what reports and exported spreadsheets draw: guessing columns from aligned whitespace (its ``text``
strategy) also turns two-column prose and tables of contents into "tables".

pdfplumber lays out every character of a page with pdfminer: on 75 pages of ten corpus PDFs it took
172 ms a page (55-315 ms by file), about three times pypdf's text extraction of the same pages, so
callers bound it with ``max_pages``. With the ``lines`` strategy, rows that are not ruled apart come
out merged into one row whose cells hold several lines' words; the text is all there, the grid coarser.

:func:`find_tables` reads the grids; :func:`page_elements` puts them into a page's pypdf text, where the
same cells already appear as loose lines, so that each table is one ``table`` element, in its place,
and its cells are not also kept as paragraphs.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Collection
from typing import Any

from pipelines.contracts.documents import Element, ElementKind

__all__ = ["CELL_SEPARATOR", "MAX_TABLE_PAGES", "find_tables", "page_elements", "ruled_pages"]

MAX_TABLE_PAGES = 50
"""Most pages of one PDF searched for tables (after :func:`ruled_pages`); the rest keep plain text."""

CELL_SEPARATOR = " | "
"""Between the cells of a row, as in every other format's table text (one row per line)."""

_MIN_ROWS = 2
_MIN_COLUMNS = 2
_MIN_FILLED = 0.5  # share of a table's cells that hold text
# pypdf's paragraph breaks, as pipelines.extract.pdf splits pages (not imported from there: pdf.py imports us).
_PARAGRAPH_BREAK_RE = re.compile(r"\n[ \t\r\f\v]*\n")
_WS_RE = re.compile(r"\s+")

log = logging.getLogger(__name__)


def ruled_pages(pdf: Any, page_count: int, *, limit: int = MAX_TABLE_PAGES) -> list[int]:
    """The first ``limit`` pages (1-based) that draw ruling lines or cell boxes, from an open pdfium document.

    pdfium lists a page's path objects in about 3 ms, against ~170 ms for pdfplumber's layout: only pages
    with at least three horizontal rules and two vertical ones (or four boxes) can hold a ruled table, so
    only those are laid out. On the corpus's first 50 pages per PDF, 193 of 495 pages passed.
    """
    import pypdfium2.raw as pdfium_c

    found: list[int] = []
    for number in range(1, page_count + 1):
        if len(found) >= limit:
            break
        try:
            page = pdf[number - 1]
        except Exception:  # a page pdfium cannot load has no table we could read either
            continue
        try:
            horizontal = vertical = boxes = 0
            for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_PATH,), max_depth=2):
                left, bottom, right, top = obj.get_bounds()
                width, height = right - left, top - bottom
                if height <= 3 and width >= 10:
                    horizontal += 1
                elif width <= 3 and height >= 10:
                    vertical += 1
                elif width >= 10 and height >= 5:
                    boxes += 1
                if (horizontal >= 3 and (vertical >= 2 or boxes >= 1)) or boxes >= 4:
                    found.append(number)
                    break
        except Exception:
            continue
        finally:
            page.close()
    return found


def find_tables(
    data: bytes, *, max_pages: int | None = None, pages: Collection[int] | None = None
) -> dict[int, list[str]]:
    """Each ruled table's grid text, per 1-based page number, in page order.

    A table is one row per line, cells joined by `` | ``; rows with no text and columns empty in every
    row are dropped, and only tables left with at least two rows and two columns count. Pages without
    a table are absent.

    Args:
        data: the PDF file.
        max_pages: read at most this many pages from the start (None: all).
        pages: read only these 1-based pages (e.g. :func:`ruled_pages`); None: every page.

    Never raises for a damaged or unreadable file (the text layer is still the document): a page
    pdfplumber cannot read has no tables, and a file it cannot open has none at all. MemoryError is
    let through for the extraction sandbox.
    """
    import pdfplumber

    # pdfminer reports every malformed object it skips as a WARNING; they are the file's, not ours.
    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    found: dict[int, list[str]] = {}
    try:
        pdf = pdfplumber.open(io.BytesIO(data))
    except MemoryError:
        raise
    except Exception as e:  # pdfminer's many exceptions on damaged or encrypted files
        log.info("no PDF tables: pdfplumber cannot open the file (%s: %s)", type(e).__name__, e)
        return found
    with pdf:
        every = pdf.pages if max_pages is None else pdf.pages[:max_pages]
        for number, page in enumerate(every, 1):
            if pages is not None and number not in pages:
                continue
            try:
                grids = page.extract_tables()
            except MemoryError:
                raise
            except Exception as e:
                log.info("no tables read from PDF page %d (%s: %s)", number, type(e).__name__, e)
                continue
            finally:
                page.close()  # drops the page's cached layout objects, which dominate pdfplumber's memory
            tables = [t for t in (_grid_text(g) for g in grids) if t]
            if tables:
                found[number] = tables
    return found


def _grid_text(grid: list[list[str | None]]) -> str | None:
    rows = [[_WS_RE.sub(" ", cell or "").strip() for cell in row] for row in grid]
    rows = [row for row in rows if any(row)]
    width = max((len(row) for row in rows), default=0)
    # Merged cells and snapped lines leave columns of None; a column empty in every row is no column.
    keep = [c for c in range(width) if any(c < len(row) and row[c] for row in rows)]
    cells = [[row[c] if c < len(row) else "" for c in keep] for row in rows]
    # Boxed figures and form fields are grids too, but mostly of empty boxes or of one box per row.
    full_rows = sum(1 for row in cells if sum(1 for cell in row if cell) >= _MIN_COLUMNS)
    filled = sum(1 for row in cells for cell in row if cell)
    if len(keep) < _MIN_COLUMNS or full_rows < _MIN_ROWS or filled < _MIN_FILLED * len(rows) * len(keep):
        return None
    return "\n".join(CELL_SEPARATOR.join(row) for row in cells)


def page_elements(text: str, tables: list[str], *, page: int) -> list[Element]:
    """A page's elements: its text layer's paragraphs, with each table in place of its loose cells.

    pypdf writes a table's cells as ordinary lines ("name maintainer team", or a cell per line). The
    longest run of consecutive lines made only of one table's words, covering at least half of those
    words, is that table: it is replaced by one ``table`` element with the grid text. A table whose
    run is not found is added after the page's text. String work only, linear in the page's words.

    Element texts are stripped but not cleaned or charged: the caller passes them through its
    ``CharBudget`` as it does for paragraphs.

    Args:
        text: the page's pypdf text.
        tables: the page's grid texts from :func:`find_tables`.
        page: the 1-based page number the elements carry.
    """
    lines = text.splitlines()
    owner: list[int | None] = [None] * len(lines)
    unplaced: list[int] = []
    for t, table in enumerate(tables):
        run = _table_run(lines, owner, _words(table))
        if run is None:
            unplaced.append(t)
            continue
        for i in range(run[0], run[1]):
            owner[i] = t

    elements: list[Element] = []
    loose: list[str] = []

    def paragraphs() -> None:
        for paragraph in _PARAGRAPH_BREAK_RE.split("\n".join(loose)):
            if paragraph.strip():
                elements.append(Element(text=paragraph.strip(), kind=ElementKind.text, page=page))
        loose.clear()

    for i, line in enumerate(lines):
        table_index = owner[i]
        if table_index is None:
            loose.append(line)
        elif i == 0 or owner[i - 1] != table_index:
            paragraphs()
            elements.append(Element(text=tables[table_index], kind=ElementKind.table, page=page))
    paragraphs()
    elements.extend(Element(text=tables[t], kind=ElementKind.table, page=page) for t in unplaced)
    return elements


def _words(table: str) -> set[str]:
    return {w for line in table.splitlines() for cell in line.split(CELL_SEPARATOR) for w in cell.split()}


def _table_run(lines: list[str], owner: list[int | None], words: set[str]) -> tuple[int, int] | None:
    """[start, end) of the free lines that best match a table's words, or None."""
    best: tuple[int, int] | None = None
    best_covered = 0
    start: int | None = None
    covered: set[str] = set()
    last = -1  # the run's last non-blank line; blank lines inside a run do not end it
    for i in [*range(len(lines)), len(lines)]:
        line_words = lines[i].split() if i < len(lines) else None
        if line_words is not None and owner[i] is None and not line_words:
            continue  # a blank line
        if line_words is not None and owner[i] is None and set(line_words) <= words:
            if start is None:
                start, covered = i, set()
            covered.update(line_words)
            last = i
            continue
        if start is not None and len(covered) > best_covered:
            best, best_covered = (start, last + 1), len(covered)
        start = None
    if best is None or 2 * best_covered < len(words):
        return None
    return best
