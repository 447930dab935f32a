"""Where a search hit's text came from: OCR or the file's own text, and the e-mail it was attached to.

These are facts of a document *version* recorded in silver (``pages_json``, ``parent_doc_id``), not of a
chunk, so they are looked up per hit document rather than copied onto every gold row and vector: no
re-embedding or vector-store schema change is needed to add one. A version's facts do not change once it is
extracted, so they are cached (per lake, for a minute: a purge that lets a doc_id start again at
version 1 is seen within that bound); a search pays one silver read only for versions it has not seen.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import NamedTuple

from pipelines.contracts.search import SearchHit
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import DOCUMENTS
from pipelines.runtime import Runtime

__all__ = ["annotate", "clear_cache"]

_CACHE_SIZE = 50_000
_TTL_S = 60.0
_IN_LIST = 500


class _Facts(NamedTuple):
    ocr_pages: frozenset[int]
    parent_doc_id: str | None


_cache: OrderedDict[tuple[str, str, str, int], tuple[_Facts, float]] = OrderedDict()
_lock = threading.Lock()


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def annotate(rt: Runtime, tenant: str, hits: list[SearchHit]) -> list[SearchHit]:
    """The hits with ``ocr`` (the chunk's pages were read by OCR) and ``parent_doc_id`` filled in.

    A hit whose version is no longer silver's current one (an older version still searchable while its
    successor is embedded) keeps the defaults: its own facts are not recorded any more.
    """
    if not hits:
        return hits
    facts = _lookup(rt, tenant, {(h.doc_id, h.version) for h in hits})
    out = []
    for hit in hits:
        found = facts.get((hit.doc_id, hit.version))
        if found is None:
            out.append(hit)
            continue
        pages = _span(hit.page_start, hit.page_end)
        ocr = bool(found.ocr_pages) and (not pages or bool(found.ocr_pages & pages))
        out.append(hit.model_copy(update={"ocr": ocr, "parent_doc_id": found.parent_doc_id}))
    return out


def _span(start: int | None, end: int | None) -> frozenset[int]:
    if start is None:
        return frozenset()
    return frozenset(range(start, (end if end is not None else start) + 1))


def _lookup(rt: Runtime, tenant: str, wanted: set[tuple[str, int]]) -> dict[tuple[str, int], _Facts]:
    found: dict[tuple[str, int], _Facts] = {}
    missing: list[str] = []
    now = time.monotonic()
    with _lock:
        for doc_id, version in wanted:
            cached = _cache.get((rt.lake.root, tenant, doc_id, version))
            if cached is None or cached[1] < now:
                missing.append(doc_id)
            else:
                found[(doc_id, version)] = cached[0]
    if not missing:
        return found
    columns = [c for c in ("doc_id", "version", "pages_json", "parent_doc_id") if c in DOCUMENTS.schema.names]
    ids = sorted(set(missing))
    for start in range(0, len(ids), _IN_LIST):
        in_list = ", ".join(sql_quote(d) for d in ids[start : start + _IN_LIST])
        where = f"tenant = {sql_quote(tenant)} AND doc_id IN ({in_list})"
        for row in rt.lake.read(DOCUMENTS, where, columns=columns).to_pylist():
            key = (row["doc_id"], row["version"])
            if key not in wanted:
                continue  # silver moved on to a newer version: this hit's facts are not recorded
            pages = json.loads(row.get("pages_json") or "[]")
            facts = _Facts(frozenset(p["page"] for p in pages if p.get("source") == "ocr"), row.get("parent_doc_id"))
            found[key] = facts
            with _lock:
                _cache[(rt.lake.root, tenant, *key)] = (facts, now + _TTL_S)
                _cache.move_to_end((rt.lake.root, tenant, *key))
                while len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
    return found
