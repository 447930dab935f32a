"""OCR accuracy and speed: text-layer pages of corpus PDFs rendered to images, OCR'd, compared with their text.

The page's own text layer is the reference, so no hand transcription is needed: each page is rendered
by pdfium at each DPI (as doclake renders a scan's pages), read by the same ``ocr_image`` the extractor
calls, and scored against it.

The sample (unchanged since 2026-12-03): born-digital English pages, ≥ 800 letters, ≥ 97 % ASCII, a
text layer doclake would keep, median line ≥ 45 characters (not two narrow columns), at most 3 per
file, the first ``--pages`` in file-name order.

A **clean page** is a page of the sample that is single-column running text by this rule, decided from
the PDF alone (no page is picked by hand), all three of:

- single column: at least half of the page's text-line rectangles (pdfium's ``FPDFText_CountRects``,
  those wider than a tenth of the page) cross the page's vertical middle — in two columns almost none do;
- running text: at least 70 % of its text layer's non-empty lines are prose lines (≥ 6 words, ≥ 80 % of
  their visible characters letters);
- no ruled table or form grid (:func:`pipelines.extract.pdf_tables.ruled_pages`, the extractor's own test).

Forms, tables, slides, two-column papers and reference lists fail it: on those the text layer's reading
order differs from OCR's.

Metrics, per page, then averaged:

- **CER**: Levenshtein distance / reference length, both texts with whitespace collapsed. Counts reading
  order differences as errors (a form's fields read in another order cost their whole length).
- **CER, words sorted** (order-independent): both texts NFKC-normalised (ligatures such as "ﬁ" become
  "fi"), split on whitespace, the words sorted and joined by single spaces, then CER as above. A
  misread character costs about one edit wherever its word is on the page.
- **bag-of-words F1**: words as a multiset (NFKC, case kept, punctuation kept), F1 of OCR's words against
  the reference's; 1 - F1 is an order-free word error rate.
- **words missed (any order)**: share of reference words (multiset) OCR did not produce.

    .venv/bin/python bench/ocr_accuracy.py --pages 40 --append

``--tiny`` scores 2 pages at 150 DPI. Pages/s is per core: OCR runs one Tesseract thread per page.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, SHARED, markdown_table, percentile, report

_WS = re.compile(r"\s+")


def _normalise(text: str) -> str:
    return _WS.sub(" ", text).strip()


def sorted_words(text: str) -> str:
    """The text's words (NFKC), sorted, joined by single spaces: its content without its order."""
    return " ".join(sorted(unicodedata.normalize("NFKC", text).split()))


def bag_f1(got: str, reference: str) -> float:
    """F1 of OCR's words against the reference's, as multisets (NFKC)."""
    ours = Counter(unicodedata.normalize("NFKC", got).split())
    theirs = Counter(unicodedata.normalize("NFKC", reference).split())
    common = sum((ours & theirs).values())
    if not common:
        return 0.0
    precision, recall = common / sum(ours.values()), common / sum(theirs.values())
    return 2 * precision * recall / (precision + recall)


def is_running_text(text: str) -> bool:
    """≥ 70 % of the non-empty lines are prose lines: ≥ 6 words, ≥ 80 % of visible characters letters."""

    def prose(line: str) -> bool:
        visible = [c for c in line if not c.isspace()]
        return len(line.split()) >= 6 and sum(c.isalpha() for c in visible) >= 0.8 * len(visible)

    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and sum(map(prose, lines)) >= 0.7 * len(lines)


def is_single_column(page: object) -> bool:
    """At least half of the page's text lines (pdfium's rectangles wider than a tenth of the page) cross the
    page's vertical middle."""
    import pypdfium2 as pdfium

    assert isinstance(page, pdfium.PdfPage)
    width = page.get_size()[0]
    text = page.get_textpage()
    lines = [text.get_rect(i) for i in range(text.count_rects())]
    wide = [(left, right) for left, _, right, _ in lines if right - left > 0.1 * width]
    return bool(wide) and sum(left < width / 2 < right for left, right in wide) >= 0.5 * len(wide)


def clean_pages(corpus: Path, limit: int) -> list[tuple[str, int, str, bool]]:
    """(file, page number, reference text, clean) of the sample's pages, deterministic order."""
    import pypdfium2 as pdfium
    from pypdf import PdfReader

    from pipelines.extract.ocr import needs_ocr
    from pipelines.extract.pdf_tables import ruled_pages

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    found: list[tuple[str, int, str, bool]] = []
    for path in sorted((corpus / "pdf").glob("*.pdf")):
        try:
            reader = PdfReader(str(path))
            if reader.is_encrypted or len(reader.pages) > 200:
                continue
            taken = 0
            ruled: set[int] | None = None
            for number, page in enumerate(reader.pages[:20], 1):
                text = page.extract_text() or ""
                letters = sum(c.isalpha() for c in text)
                ascii_share = sum(c.isascii() for c in text) / max(1, len(text))
                if letters < 800 or ascii_share < 0.97 or needs_ocr(text) or _looks_multicolumn(text):
                    continue
                pdf = pdfium.PdfDocument(str(path))
                if ruled is None:
                    ruled = set(ruled_pages(pdf, min(20, len(pdf)), limit=20))
                clean = is_running_text(text) and number not in ruled and is_single_column(pdf[number - 1])
                pdf.close()
                found.append((path.name, number, _normalise(text), clean))
                taken += 1
                if taken == 3 or len(found) >= limit:
                    break
        except Exception:  # a damaged corpus file is not a page to score
            continue
        if len(found) >= limit:
            break
    return found


def _looks_multicolumn(text: str) -> bool:
    # Two-column layouts give many short lines (a column's width): median line under 45 characters.
    lines = [len(line) for line in text.splitlines() if line.strip()]
    return not lines or statistics.median(lines) < 45


def score(corpus: Path, pages: int, dpis: list[int]) -> dict[tuple[int, str], dict[str, float]]:
    """Metrics by (DPI, population): ``sample`` (every page) and ``clean`` (the clean pages of it)."""
    import pypdfium2 as pdfium
    from rapidfuzz.distance import Levenshtein

    from pipelines.extract.config import OcrConfig
    from pipelines.extract.ocr import ocr_image

    sample = clean_pages(corpus, pages)
    results: dict[tuple[int, str], dict[str, float]] = {}
    for dpi in dpis:
        config = OcrConfig(dpi=dpi)
        rows: list[dict[str, float]] = []
        worst: list[tuple[float, str]] = []
        for name, number, reference, clean in sample:
            pdf = pdfium.PdfDocument(str(corpus / "pdf" / name))
            image = pdf[number - 1].render(scale=dpi / 72, grayscale=True).to_pil()
            started = time.perf_counter()
            result = ocr_image(image, config, page=number)
            seconds = time.perf_counter() - started
            pdf.close()
            got = _normalise("\n".join(result.paragraphs))
            ref_sorted = sorted_words(reference)
            # Words of the reference that OCR did not read, as a multiset: blind to reading order (forms,
            # sidebars, captions placed elsewhere), so it tells recognition errors from layout order.
            missed = Counter(reference.split()) - Counter(got.split())
            row = {
                "clean": float(clean),
                "cer": Levenshtein.distance(got, reference) / max(1, len(reference)),
                "cer_sorted": Levenshtein.distance(sorted_words(got), ref_sorted) / max(1, len(ref_sorted)),
                "bag_f1": bag_f1(got, reference),
                "missed": sum(missed.values()) / max(1, len(reference.split())),
                "seconds": seconds,
                "confidence": result.confidence if result.confidence is not None else -1.0,
                "other_script": float(result.languages != config.tesseract_lang),
            }
            rows.append(row)
            worst.append(
                (
                    row["cer"],
                    f"{name} p.{number} ({'clean' if clean else 'not clean'}): CER {row['cer']:.3f}, "
                    f"sorted {row['cer_sorted']:.3f}, bag F1 {row['bag_f1']:.3f}, read as {result.languages}",
                )
            )
        for population, chosen in (("sample", rows), ("clean", [r for r in rows if r["clean"]])):
            results[(dpi, population)] = _summary(chosen, sample, population)
        for _, line in sorted(worst, reverse=True)[:8]:
            print(f"{dpi} DPI worst: {line}")
    return results


def _summary(
    rows: list[dict[str, float]], sample: list[tuple[str, int, str, bool]], population: str
) -> dict[str, float]:
    def mean(key: str) -> float:
        return round(statistics.fmean(r[key] for r in rows), 4) if rows else 0.0

    cers = [r["cer"] for r in rows]
    sorted_cers = [r["cer_sorted"] for r in rows]
    confidences = [r["confidence"] for r in rows if r["confidence"] >= 0]
    seconds = sum(r["seconds"] for r in rows)
    files = {n for n, _, _, clean in sample if clean or population == "sample"}
    return {
        "pages": len(rows),
        "files": len(files),
        "cer_mean": mean("cer"),
        "cer_median": round(statistics.median(cers), 4) if cers else 0.0,
        "cer_p90": round(percentile(cers, 90), 4) if cers else 0.0,
        "pages_cer_under_3pct": round(sum(c <= 0.03 for c in cers) / max(1, len(cers)), 3),
        "cer_sorted_mean": mean("cer_sorted"),
        "cer_sorted_median": round(statistics.median(sorted_cers), 4) if sorted_cers else 0.0,
        "pages_cer_sorted_under_3pct": round(sum(c <= 0.03 for c in sorted_cers) / max(1, len(sorted_cers)), 3),
        "bag_f1_mean": mean("bag_f1"),
        "words_missed_mean": mean("missed"),
        "confidence_mean": round(statistics.fmean(confidences), 3) if confidences else 0.0,
        "pages_other_script": int(sum(r["other_script"] for r in rows)),
        "pages_per_s_per_core": round(len(rows) / seconds, 3) if seconds else 0.0,
    }


def main(argv: list[str] | None = None) -> dict[tuple[int, str], dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--dpi", type=int, action="append", help="DPI to score (repeatable; default 150 and 300)")
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    parser.add_argument("--tiny", action="store_true", help="2 pages at 150 DPI (smoke test)")
    parser.add_argument("--append", action="store_true", help=f"append the section to {BENCH_DOC}")
    args = parser.parse_args(argv)
    pages, dpis = (2, [150]) if args.tiny else (args.pages, args.dpi or [150, 300])
    results = score(args.corpus, pages, dpis)
    rows = [
        [dpi, population, r["pages"], r["files"], r["cer_mean"], r["cer_median"], r["pages_cer_under_3pct"],
         r["cer_sorted_mean"], r["cer_sorted_median"], r["pages_cer_sorted_under_3pct"], r["bag_f1_mean"],
         r["words_missed_mean"], r["confidence_mean"], r["pages_other_script"], r["pages_per_s_per_core"]]
        for (dpi, population), r in results.items()
    ]  # fmt: skip
    body = markdown_table(
        [
            "DPI",
            "population",
            "pages",
            "files",
            "CER mean",
            "CER median",
            "CER ≤ 3 %",
            "CER words sorted, mean",
            "CER words sorted, median",
            "CER words sorted ≤ 3 %",
            "bag-of-words F1",
            "words missed (any order)",
            "mean confidence",
            "read with another script's pack",
            "pages/s per core",
        ],
        rows,
    )
    report(
        "OCR accuracy (Tesseract 5, eng, script detection on) on rendered corpus pages",
        body,
        append_to=BENCH_DOC if args.append else None,
    )
    return results


if __name__ == "__main__":
    main()
