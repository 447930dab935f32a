"""Load scenario: concurrent uploads and searches against a running doclake for a fixed time.

Reports the error rate, search latency percentiles under ingestion load, and whether every uploaded
document ended `indexed` or `failed` (none lost, none stuck). Start the service first
(`bash scripts/up.sh`), then:

    .venv/bin/python bench/load.py --url http://127.0.0.1:8000 --duration 60 --uploaders 2 --searchers 4

Documents are real files from ../shared/corpus (small ones, so embedding does not dominate), each
made unique per upload so every upload is a new document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
QUERIES = [
    "how to install the library",
    "family day with face painting",
    "war and peace prince vasili",
    "table of quarterly results",
    "email about a meeting",
    "hockey team statistics",
]


@dataclass
class LoadReport:
    duration_s: float
    uploads: int = 0
    upload_errors: int = 0
    searches: int = 0
    search_errors: int = 0
    search_latencies_ms: list[float] = field(default_factory=list)
    final_status: dict[str, int] = field(default_factory=dict)
    unfinished: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        lat = sorted(self.search_latencies_ms)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else 0.0

        requests = self.uploads + self.searches
        errors = self.upload_errors + self.search_errors
        return {
            "duration_s": round(self.duration_s, 1),
            "uploads": self.uploads,
            "searches": self.searches,
            "error_rate": round(errors / requests, 4) if requests else 0.0,
            "search_p50_ms": pct(0.50),
            "search_p99_ms": pct(0.99),
            "search_mean_ms": round(statistics.fmean(lat), 1) if lat else 0.0,
            "final_status": self.final_status,
            "lost_or_stuck": len(self.unfinished),
        }


def _documents(corpus: Path) -> list[tuple[str, bytes]]:
    picks = [
        "txt/unst__book-war-and-peace-1p.txt",
        "md/unst__codeblock.md",
        "md/readability__README.md",
        "html/unst__fake-html.html",
        "eml/unst__family-day.eml",
        "csv/unst__stanley-cups.tsv",
    ]
    return [(Path(p).name, (corpus / p).read_bytes()) for p in picks if (corpus / p).is_file()]


async def _uploader(
    client: httpx.AsyncClient, docs: list[tuple[str, bytes]], stop: float, report: LoadReport, ids: list[str]
) -> None:
    n = 0
    while time.monotonic() < stop:
        name, data = random.choice(docs)
        n += 1
        unique = data + f"\n\nload-test copy {random.getrandbits(64):x} {n}\n".encode()
        try:
            r = await client.post("/v1/documents", files={"file": (name, unique)})
            report.uploads += 1
            if r.status_code == 202:
                ids.append(r.json()["doc_id"])
            else:
                report.upload_errors += 1
        except httpx.HTTPError:
            report.uploads += 1
            report.upload_errors += 1
        await asyncio.sleep(0.2)


async def _searcher(client: httpx.AsyncClient, stop: float, report: LoadReport) -> None:
    while time.monotonic() < stop:
        started = time.perf_counter()
        try:
            r = await client.post("/v1/search", json={"query": random.choice(QUERIES), "top_k": 5})
            report.searches += 1
            if r.status_code == 200:
                report.search_latencies_ms.append((time.perf_counter() - started) * 1000)
            else:
                report.search_errors += 1
        except httpx.HTTPError:
            report.searches += 1
            report.search_errors += 1


async def run_load(
    url: str, *, duration: float, uploaders: int, searchers: int, settle_timeout: float = 600, corpus: Path = CORPUS
) -> LoadReport:
    docs = _documents(corpus)
    report = LoadReport(duration_s=duration)
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        stop = time.monotonic() + duration
        await asyncio.gather(
            *(_uploader(client, docs, stop, report, ids) for _ in range(uploaders)),
            *(_searcher(client, stop, report) for _ in range(searchers)),
        )
        deadline = time.monotonic() + settle_timeout
        pending = set(ids)
        statuses: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            for doc_id in list(pending):
                status = (await client.get(f"/v1/documents/{doc_id}")).json()["status"]
                if status in ("indexed", "failed"):
                    statuses[doc_id] = status
                    pending.discard(doc_id)
            await asyncio.sleep(1)
    report.unfinished = sorted(pending)
    for status in statuses.values():
        report.final_status[status] = report.final_status.get(status, 0) + 1
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--uploaders", type=int, default=2)
    parser.add_argument("--searchers", type=int, default=4)
    args = parser.parse_args()
    report = asyncio.run(run_load(args.url, duration=args.duration, uploaders=args.uploaders, searchers=args.searchers))
    print(json.dumps(report.summary(), indent=2))


if __name__ == "__main__":
    main()
