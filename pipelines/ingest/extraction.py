"""The extract step: a raw object's text and elements into silver."""

from __future__ import annotations

import json
from typing import Any

from pipelines.contracts.documents import (
    DocumentStatus,
)
from pipelines.errors import StaleVersion
from pipelines.ingest.guards import Results, single_result, triage
from pipelines.lakehouse.documents import (
    get_documents,
    update_documents,
)
from pipelines.runtime import Runtime

__all__ = ["extract_many", "extract_step"]


def extract_step(rt: Runtime, tenant: str, doc_id: str, version: int) -> bool:
    """Extract the raw object's text into silver. Returns False when there was nothing to do.

    Raises:
        ExtractionError (and subclasses): the file cannot be read; not retryable.
        StaleVersion: a newer version superseded this one.
    """
    result: bool = single_result(extract_many(rt, tenant, {doc_id: version}), doc_id)
    return result


def extract_many(rt: Runtime, tenant: str, versions: dict[str, int]) -> Results:
    """``extract_step`` for many documents (doc_id → version) with two silver commits in all.

    A file that cannot be read is that document's error; the others go on.
    """
    from pipelines.extract.config import ExtractConfig
    from pipelines.extract.extractor import extract_bytes

    rows = get_documents(rt.lake, tenant, list(versions))
    results, ready = triage(rows, versions, (DocumentStatus.queued, DocumentStatus.extracting), idle=False)
    todo = {d: versions[d] for d in ready}
    started = update_documents(rt.lake, tenant, todo, status=DocumentStatus.extracting.value, error=None)
    config = ExtractConfig(timeout_s=rt.settings.extract_timeout_s, memory_mb=rt.settings.extract_memory_mb)
    changes: dict[str, dict[str, Any]] = {}
    for doc_id in todo:
        if doc_id not in started:
            results[doc_id] = StaleVersion("superseded before extraction", doc_id=doc_id)
            continue
        row = rows[doc_id]
        try:
            data = rt.objects.get(row["source_uri"])
            document = extract_bytes(data, doc_id=doc_id, filename=row["filename"], config=config)
        except Exception as e:  # one unreadable file is its document's error, not the batch's
            results[doc_id] = e
            continue
        changes[doc_id] = {
            "format": document.format.value,
            "mime": document.mime,
            "text": document.text,
            "elements_json": json.dumps([e.model_dump(mode="json") for e in document.elements]),
            "page_count": document.page_count,
            "page_errors_json": json.dumps([p.model_dump() for p in document.page_errors]),
        }
    columns = {name: {d: c[name] for d, c in changes.items()} for name in next(iter(changes.values()), {})}
    updated = update_documents(
        rt.lake, tenant, {d: versions[d] for d in changes}, status=DocumentStatus.embedding.value, **columns
    )
    for doc_id in changes:
        results[doc_id] = True if doc_id in updated else StaleVersion("superseded while extracting", doc_id=doc_id)
    return results
