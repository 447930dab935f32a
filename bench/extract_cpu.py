"""CPU seconds of extraction per file, in this process (no sandbox child), after a warm-up.

Extraction runs on the same cores as the encoder in `doclake up`, so its CPU time, not its wall time,
is what it takes from the embedding; CPU time is also steadier than wall time on a shared machine.

    .venv/bin/python bench/extract_cpu.py            # the files of bench/ingest_throughput.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SHARED
from bench.ingest_throughput import DEFAULT_FILES


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    parser.add_argument("--file", action="append", help="path under --corpus (repeatable); default: the throughput set")
    args = parser.parse_args(argv)

    from pipelines.extract.extractor import extract_unbounded, warm_up

    warm_up()
    total = 0.0
    for name in args.file or DEFAULT_FILES:
        data = (args.corpus / name).read_bytes()
        started = time.process_time()
        doc = extract_unbounded(data, doc_id="bench", filename=Path(name).name)
        cpu = time.process_time() - started
        total += cpu
        print(f"{name:45s} {len(data):>9,} bytes {len(doc.elements):>6} elements  cpu {cpu:6.3f} s")
    print(f"{'total':45s} cpu {total:.3f} s")
    return total


if __name__ == "__main__":
    main()
