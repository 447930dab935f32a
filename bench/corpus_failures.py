"""Which corpus files fail to extract, and why: the README example's folders through the real extractor.

    .venv/bin/python bench/corpus_failures.py ../shared/corpus/pdf ../shared/corpus/docx --append

Runs ``extract_bytes`` (the bounded extraction the workers run, with the default settings: OCR on) on
every file, so its failures are exactly the ones `doclake ingest … --wait` records as `failed`, without
spending the embedding time. Prints the count, the time and one row per failure with its reason, and
how many pages were read by OCR. ``--tiny`` takes the 3 smallest files of each folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCH_DOC, SHARED, markdown_table, report


def run(folders: list[Path], *, limit: int | None = None) -> dict[str, object]:
    from pipelines.errors import DocLakeError
    from pipelines.extract.extractor import extract_bytes
    from pipelines.extract.sandbox import start_server
    from pipelines.settings import Settings

    start_server()
    settings = Settings()
    from pipelines.extract.config import ExtractConfig

    config = ExtractConfig(
        timeout_s=settings.extract_timeout_s, memory_mb=settings.extract_memory_mb, ocr=settings.ocr_config
    )

    def listed(folder: Path) -> list[Path]:
        files = sorted(p for p in folder.iterdir() if p.is_file())
        # A limited run takes the smallest files, so a smoke test does not meet the 600-page ones.
        return sorted(files, key=lambda p: p.stat().st_size)[:limit] if limit else files

    files = [p for folder in folders for p in listed(folder)]
    failures: list[tuple[str, str, str]] = []
    ocr_pages = 0
    ocr_files = 0
    started = time.perf_counter()
    for path in files:
        try:
            doc = extract_bytes(path.read_bytes(), doc_id=path.name, filename=path.name, config=config)
        except DocLakeError as e:
            failures.append((f"{path.parent.name}/{path.name}", e.code, e.message[:140].replace("|", "/")))
            continue
        read = sum(1 for p in doc.pages if p.source.value == "ocr")
        ocr_pages += read
        ocr_files += bool(read)
    return {
        "files": len(files),
        "failed": len(failures),
        "failures": failures,
        "ocr_files": ocr_files,
        "ocr_pages": ocr_pages,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--tiny", action="store_true", help="the 3 smallest files of each folder (smoke test)")
    parser.add_argument("--append", action="store_true", help=f"append the section to {BENCH_DOC}")
    args = parser.parse_args(argv)
    folders = args.folders or [SHARED / "corpus" / "pdf", SHARED / "corpus" / "docx"]
    result = run(folders, limit=3 if args.tiny else None)
    failures = result["failures"]
    assert isinstance(failures, list)
    body = (
        f"{result['failed']} of {result['files']} files failed; {result['ocr_pages']} pages of "
        f"{result['ocr_files']} files were read by OCR; {result['seconds']} s in all.\n\n"
        + markdown_table(["file", "code", "reason"], failures)
    )
    report("Corpus files that fail to extract (README example)", body, append_to=BENCH_DOC if args.append else None)
    return result


if __name__ == "__main__":
    main()
