"""OCR accuracy and speed: text-layer pages of corpus PDFs rendered to images, OCR'd, compared with their text.

The page's own text layer is the reference, so no hand transcription is needed: each page is rendered
by pdfium at each DPI (as doclake renders a scan's pages), read by the same ``ocr_image`` the extractor
calls, and scored by character error rate (Levenshtein distance / reference length) after both texts'
whitespace is collapsed. Pages are "clean" when they are born-digital English prose: ≥ 800 letters,
≥ 97 % ASCII, a text layer doclake would keep, taken from single-column PDFs at most 3 per file.
Multi-column pages are left out, because the text layer and OCR may read their columns in different
orders, which is an ordering difference rather than a recognition error.

    .venv/bin/python bench/ocr_accuracy.py --pages 40 --append

``--tiny`` scores 2 pages at 150 DPI. Pages/s is per core: OCR runs one Tesseract thread per page.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, SHARED, markdown_table, percentile, report

_WS = re.compile(r"\s+")


def _normalise(text: str) -> str:
    return _WS.sub(" ", text).strip()


def clean_pages(corpus: Path, limit: int) -> list[tuple[str, int, str]]:
    """(file, page number, reference text) of clean born-digital pages, deterministic order."""
    from pypdf import PdfReader

    from pipelines.extract.ocr import needs_ocr

    found: list[tuple[str, int, str]] = []
    for path in sorted((corpus / "pdf").glob("*.pdf")):
        try:
            reader = PdfReader(str(path))
            if reader.is_encrypted or len(reader.pages) > 200:
                continue
            taken = 0
            for number, page in enumerate(reader.pages[:20], 1):
                text = page.extract_text() or ""
                letters = sum(c.isalpha() for c in text)
                ascii_share = sum(c.isascii() for c in text) / max(1, len(text))
                if letters < 800 or ascii_share < 0.97 or needs_ocr(text) or _looks_multicolumn(text):
                    continue
                found.append((path.name, number, _normalise(text)))
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


def score(corpus: Path, pages: int, dpis: list[int]) -> dict[int, dict[str, float]]:
    import pypdfium2 as pdfium
    from rapidfuzz.distance import Levenshtein

    from pipelines.extract.config import OcrConfig
    from pipelines.extract.ocr import ocr_image

    sample = clean_pages(corpus, pages)
    results: dict[int, dict[str, float]] = {}
    for dpi in dpis:
        config = OcrConfig(dpi=dpi)
        cers: list[float] = []
        unordered: list[float] = []
        worst: list[tuple[float, str]] = []
        seconds: list[float] = []
        confidences: list[float] = []
        for name, number, reference in sample:
            pdf = pdfium.PdfDocument(str(corpus / "pdf" / name))
            image = pdf[number - 1].render(scale=dpi / 72, grayscale=True).to_pil()
            started = time.perf_counter()
            result = ocr_image(image, config, page=number)
            seconds.append(time.perf_counter() - started)
            got = _normalise("\n".join(result.paragraphs))
            cers.append(Levenshtein.distance(got, reference) / max(1, len(reference)))
            # Words of the reference that OCR did not read, as a multiset: blind to reading order (forms,
            # sidebars, captions placed elsewhere), so it tells recognition errors from layout order.
            missed = Counter(reference.split()) - Counter(got.split())
            unordered.append(sum(missed.values()) / max(1, len(reference.split())))
            worst.append((cers[-1], f"{name} p.{number}: CER {cers[-1]:.3f}, words missed {unordered[-1]:.3f}"))
            if result.confidence is not None:
                confidences.append(result.confidence)
            pdf.close()
        results[dpi] = {
            "pages": len(sample),
            "files": len({n for n, _, _ in sample}),
            "cer_mean": round(statistics.fmean(cers), 4) if cers else 0.0,
            "cer_median": round(statistics.median(cers), 4) if cers else 0.0,
            "cer_p90": round(percentile(cers, 90), 4),
            "pages_cer_under_3pct": round(sum(c <= 0.03 for c in cers) / max(1, len(cers)), 3),
            "words_missed_mean": round(statistics.fmean(unordered), 4) if unordered else 0.0,
            "pages_per_s_per_core": round(len(seconds) / sum(seconds), 3) if seconds else 0.0,
            "confidence_mean": round(statistics.fmean(confidences), 3) if confidences else 0.0,
        }
        for _, line in sorted(worst, reverse=True)[:5]:
            print(f"{dpi} DPI worst: {line}")
    return results


def main(argv: list[str] | None = None) -> dict[int, dict[str, float]]:
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
        [dpi, r["pages"], r["files"], r["cer_mean"], r["cer_median"], r["cer_p90"], r["pages_cer_under_3pct"],
         r["words_missed_mean"], r["confidence_mean"], r["pages_per_s_per_core"]]
        for dpi, r in results.items()
    ]  # fmt: skip
    body = markdown_table(
        [
            "DPI",
            "pages",
            "files",
            "CER mean",
            "CER median",
            "CER p90",
            "pages with CER ≤ 3 %",
            "words missed (any order)",
            "mean confidence",
            "pages/s per core",
        ],
        rows,
    )
    report(
        "OCR accuracy (Tesseract 5, eng) on rendered corpus pages", body, append_to=BENCH_DOC if args.append else None
    )
    return results


if __name__ == "__main__":
    main()
