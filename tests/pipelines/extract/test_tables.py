"""Tables from every format become ``table`` elements with their grid; long ones keep their header per chunk.

Each file is built in the test (python-docx, python-pptx and openpyxl come with unstructured's extras; the
PDF is drawn with raw operators), so each test says exactly which grid it expects.
"""

from __future__ import annotations

import io
from typing import Any

import pytest

from pipelines.contracts.documents import ChunkerConfig, ElementKind, ExtractedDocument
from pipelines.embed.chunker import chunk_document
from pipelines.extract.extractor import extract_unbounded
from pipelines.extract.pdf import assemble_pdf
from pipelines.extract.pdf_tables import find_tables, page_elements

ROWS = [["name", "maintainer", "team"], ["billing", "Alice Smith", "payments"], ["search", "Bob Jones", "discovery"]]
GRID = "name | maintainer | team\nbilling | Alice Smith | payments\nsearch | Bob Jones | discovery"
HEADER = "name | maintainer | team"


def _tables(doc: ExtractedDocument) -> list[str]:
    return [e.text for e in doc.elements if e.kind is ElementKind.table]


def _owners(n: int) -> list[list[str]]:
    return [ROWS[0], *([f"service-{i}", f"person {i}", f"team-{i % 7}"] for i in range(n))]


def test_docx_table_is_a_table_element() -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Table 1: who maintains what.")
    table = document.add_table(rows=len(ROWS), cols=len(ROWS[0]))
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    doc = extract_unbounded(out.getvalue(), doc_id="docx", filename="owners.docx")
    assert _tables(doc) == [GRID]
    assert doc.elements[0].text == "Table 1: who maintains what."


def test_pptx_table_is_a_table_element() -> None:
    import pptx
    from pptx.util import Inches

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[5])  # title only
    slide.shapes.title.text = "Owners"
    grid = slide.shapes.add_table(len(ROWS), len(ROWS[0]), Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate(ROWS):
        for c, value in enumerate(row):
            grid.cell(r, c).text = value
    out = io.BytesIO()
    deck.save(out)
    doc = extract_unbounded(out.getvalue(), doc_id="pptx", filename="owners.pptx")
    assert _tables(doc) == [GRID]
    assert all(e.page == 1 for e in doc.elements)


def test_html_table_is_a_table_element() -> None:
    head = "<tr>" + "".join(f"<th>{v}</th>" for v in ROWS[0]) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for row in ROWS[1:])
    html = f"<html><body><h1>Owners</h1><table><thead>{head}</thead><tbody>{body}</tbody></table></body></html>"
    doc = extract_unbounded(html.encode(), doc_id="html", filename="owners.html")
    assert _tables(doc) == [GRID]


def _xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_each_sheet_is_a_section_named_in_the_heading_path(tokenizer: Any) -> None:
    data = _xlsx({"Owners": _owners(200), "Budgets": [["team", "budget"], ["team-0", 10], ["team-1", 20]]})
    doc = extract_unbounded(data, doc_id="xlsx", filename="owners.xlsx")
    titles = [(e.text, e.level, e.page) for e in doc.elements if e.kind is ElementKind.title]
    assert titles == [("Owners", 0, 1), ("Budgets", 0, 2)]
    chunks = chunk_document(doc, tokenizer=tokenizer, config=ChunkerConfig())
    owners = [c for c in chunks if c.heading_path == ["Owners"]]
    budgets = [c for c in chunks if c.heading_path == ["Budgets"]]
    assert len(owners) > 2 and len(owners) + len(budgets) == len(chunks)
    assert "team-1 | 20" in budgets[-1].text
    # The header is in the last chunk of the long sheet, and every chunk after its first starts with it.
    assert all(c.text.startswith(HEADER + "\n") for c in owners[1:])
    assert owners[-1].text.endswith("service-199 | person 199 | team-3")


def test_a_sheet_that_starts_with_its_name_gets_no_second_title() -> None:
    rows: list[list[Any]] = [["Owners"], [], *_owners(3), [], ["Retired"], [], ["name", "year"], ["old", 2001]]
    doc = extract_unbounded(_xlsx({"Owners": rows}), doc_id="xlsx", filename="owners.xlsx")
    titles = [(e.text, e.level) for e in doc.elements if e.kind is ElementKind.title]
    assert titles == [("Owners", 0), ("Retired", 1)]  # a title inside the sheet nests under the sheet


def test_csv_is_one_table_with_its_header_in_every_chunk(tokenizer: Any) -> None:
    data = "\n".join(",".join(row) for row in _owners(200)).encode()
    doc = extract_unbounded(data, doc_id="csv", filename="owners.csv")
    (table,) = _tables(doc)
    assert table.splitlines()[0] == HEADER and len(table.splitlines()) == 201
    chunks = chunk_document(doc, tokenizer=tokenizer, config=ChunkerConfig())
    assert len(chunks) > 2
    assert all(c.text.startswith(HEADER + "\n") for c in chunks)
    assert chunks[-1].text.endswith("service-199 | person 199 | team-3")


def _ruled_table_pdf(rows: list[list[str]], *, caption: str) -> bytes:
    """Two pages: a caption above a table drawn with ruling lines, then a page of plain text."""
    x0, top, col_w, row_h = 40, 300, 120, 20
    ops = [b"BT /F1 11 Tf 40 330 Td (%s) Tj ET" % caption.encode()]
    width, height = len(rows[0]) * col_w, len(rows) * row_h
    ops += [b"%d %d m %d %d l S" % (x0, top - r * row_h, x0 + width, top - r * row_h) for r in range(len(rows) + 1)]
    ops += [b"%d %d m %d %d l S" % (x0 + c * col_w, top, x0 + c * col_w, top - height) for c in range(len(rows[0]) + 1)]
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            x, y = x0 + c * col_w + 4, top - (r + 1) * row_h + 6
            ops.append(b"BT /F1 10 Tf %d %d Td (%s) Tj ET" % (x, y, cell.encode()))
    contents = [b"\n".join(ops), b"BT /F1 11 Tf 40 330 Td (No table on this page.) Tj ET"]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 500 400] /Resources << /Font << /F1 7 0 R >> >> "
    return assemble_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
            page + b"/Contents 5 0 R >>",
            page + b"/Contents 6 0 R >>",
            *(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(c), c) for c in contents),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def test_pdf_ruled_table_is_found_on_its_page() -> None:
    data = _ruled_table_pdf(ROWS, caption="Table 2: owners.")
    assert find_tables(data) == {1: [GRID]}
    assert find_tables(data, max_pages=1) == {1: [GRID]}


def test_pdf_grids_that_are_not_tables_are_dropped() -> None:
    one_column = [["billing"], ["search"], ["auth"]]
    assert find_tables(_ruled_table_pdf(one_column, caption="A boxed list.")) == {}
    one_row = [["name", "maintainer", "team"]]
    assert find_tables(_ruled_table_pdf(one_row, caption="A boxed line.")) == {}
    mostly_empty = [["Name", "", ""], ["", "", ""], ["", "", "Date"]]  # a form's empty boxes
    assert find_tables(_ruled_table_pdf(mostly_empty, caption="A form.")) == {}


def test_pdf_that_cannot_be_read_has_no_tables() -> None:
    assert find_tables(b"%PDF-1.4\nnot really a pdf") == {}


def test_pdf_table_replaces_its_loose_cells_in_the_page_text() -> None:
    from pypdf import PdfReader

    data = _ruled_table_pdf(ROWS, caption="Table 2: owners.")
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert "billing Alice Smith payments" in text  # pypdf runs the cells together
    elements = page_elements(text + "\n\nSee the owners above.", find_tables(data)[1], page=1)
    assert [(e.kind, e.text) for e in elements] == [
        (ElementKind.text, "Table 2: owners."),
        (ElementKind.table, GRID),
        (ElementKind.text, "See the owners above."),
    ]
    assert {e.page for e in elements} == {1}


@pytest.mark.parametrize("text", ["", "Nothing here matches the grid at all."])
def test_pdf_table_not_found_in_the_text_is_added_after_it(text: str) -> None:
    elements = page_elements(text, [GRID], page=3)
    assert elements[-1].kind is ElementKind.table and elements[-1].text == GRID
    assert [e.text for e in elements[:-1]] == ([text] if text else [])


def test_a_ruled_pdf_table_is_a_table_element_of_the_extracted_document() -> None:
    import pypdfium2 as pdfium

    from pipelines.extract.extractor import extract_unbounded
    from pipelines.extract.pdf_tables import ruled_pages

    data = _ruled_table_pdf(ROWS, caption="Table 1: service owners.")
    assert ruled_pages(pdfium.PdfDocument(data), 1) == [1]
    doc = extract_unbounded(data, doc_id="owners")
    assert _tables(doc) == [GRID]
    assert [p.source.value for p in doc.pages] == ["text_layer", "text_layer"]
    # A page of prose draws no rules: pdfplumber never lays it out.
    from pipelines.extract.pdf import minimal_pdf

    assert ruled_pages(pdfium.PdfDocument(minimal_pdf("Just prose, no table here.")), 1) == []
