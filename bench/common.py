"""Helpers shared by the bench scripts: the embedded stack, timing summaries, markdown output."""

from __future__ import annotations

import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BENCH_DOC = REPO / "docs" / "benchmarks.md"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(percentile(ms, 50), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "mean_ms": round(statistics.fmean(ms), 1) if ms else 0.0,
    }


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line() -> str:
    """How this script was run, to print next to its figures."""
    return shlex.join([Path(sys.executable).name, *sys.argv])


def report(title: str, body: str, *, append_to: Path | None) -> str:
    """Print a section (command, machine, body) and append it to ``append_to`` when given."""
    section = (
        f"\n### {title}\n\nCommand ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}):\n\n```bash\n{command_line()}\n```\n\n{body}\n"
    )
    print(section)
    if append_to is not None:
        with append_to.open("a") as f:
            f.write(section)
    return section


@contextmanager
def stack(root: Path, *, env: dict[str, str] | None = None) -> Iterator[object]:
    """The real embedded stack (`doclake up`: API + Celery workers) on a fresh data root.

    Reuses the end-to-end tests' launcher so benches and tests start the service the same way.
    """
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.e2e.stack import embedded_stack

    with embedded_stack(root, env=env) as s:
        yield s


def upload_all_and_wait(
    client: object,
    files: Sequence[tuple[str, str, bytes]],
    *,
    workers: int = 4,
    timeout: float = 7200,
    batch: int = 1,
) -> tuple[float, dict[str, int]]:
    """Upload ``(doc_id, filename, data)`` files concurrently, wait until none is pending.

    ``batch`` > 1 sends that many files per ``/v1/documents/batch`` request.

    Returns (seconds from the first upload to the last terminal status, documents by status).
    """
    from concurrent.futures import ThreadPoolExecutor

    from app.client import DoclakeClient, NamedBytes, Source

    assert isinstance(client, DoclakeClient)
    before = client.stats().documents
    done_before = sum(before.get(s, 0) for s in ("indexed", "failed"))
    started = time.perf_counter()

    def one(item: tuple[str, str, bytes]) -> None:
        doc_id, name, data = item
        client.upload(data, filename=name, doc_id=doc_id)

    def many(group: Sequence[tuple[str, str, bytes]]) -> None:
        sources: list[Source | NamedBytes] = [(name, data) for _, name, data in group]
        result = client.upload_many(sources, doc_ids=[doc_id for doc_id, _, _ in group])
        if result.rejected:
            raise RuntimeError(f"{result.rejected} files rejected: {[i.error for i in result.items if i.error]}")

    with ThreadPoolExecutor(workers) as pool:
        if batch > 1:
            list(pool.map(many, [files[i : i + batch] for i in range(0, len(files), batch)]))
        else:
            list(pool.map(one, files))
    deadline = time.monotonic() + timeout
    while True:
        counts = client.stats().documents
        if sum(counts.get(s, 0) for s in ("indexed", "failed")) - done_before >= len(files):
            return time.perf_counter() - started, {k: v for k, v in counts.items() if v}
        if time.monotonic() > deadline:
            raise TimeoutError(f"documents still pending after {timeout:.0f}s: {counts}")
        time.sleep(1.0 if len(files) > 100 else 0.2)


_VOCAB = (
    "service replica outage latency broker worker index vector chunk document version tenant metadata "
    "cluster restart drain rotate certificate incident report engineer schedule backup storage query "
    "throughput embedding model token window page table delta lake stream event freshness partition"
)


def multipage_pdf(pages: int, *, seed: int = 0, words_per_page: int = 220) -> bytes:
    """A valid PDF of ``pages`` pages of varied English-like text (different for every ``seed``)."""
    import random

    from pipelines.extract.pdf import assemble_pdf

    rng = random.Random(seed)
    vocab = _VOCAB.split()
    page_ids = [3 + 2 * i for i in range(pages)]
    font_id = 3 + 2 * pages
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % p for p in page_ids), pages),
    ]
    for page in range(pages):
        words = [rng.choice(vocab) for _ in range(words_per_page)]
        words[0] = f"seed{seed}page{page}"
        lines = [" ".join(words[i : i + 12]) + "." for i in range(0, len(words), 12)]
        ops = b"BT /F1 10 Tf 40 760 Td 12 TL " + b" ".join(b"(%s) Tj T*" % line.encode() for line in lines) + b" ET"
        bodies.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >> "
            b"/Contents %d 0 R >>" % (font_id, page_ids[page] + 1)
        )
        bodies.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(ops), ops))
    bodies.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return assemble_pdf(bodies)


def scan_pdf(pages: int, *, seed: int = 0, lines_per_page: int = 30) -> bytes:
    """An image-only PDF of ``pages`` scanned-looking pages (text drawn by Pillow at 200 DPI): OCR work."""
    import io
    import random

    from PIL import Image, ImageDraw, ImageFont

    rng = random.Random(seed)
    vocab = _VOCAB.split()
    font = ImageFont.load_default(size=28)
    images = []
    for page in range(pages):
        image = Image.new("L", (1654, 2339), color=255)  # A4 at 200 DPI
        draw = ImageDraw.Draw(image)
        for line in range(lines_per_page):
            words = " ".join(rng.choice(vocab) for _ in range(10))
            draw.text(
                (120, 150 + line * 64), f"scan{seed}page{page} {words}" if line == 0 else words, fill=0, font=font
            )
        images.append(image)
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=200.0)
    return out.getvalue()
