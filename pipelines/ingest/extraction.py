"""The extract step: a raw object's text and elements into silver."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import Field

from pipelines.contracts.documents import DocumentStatus
from pipelines.errors import StaleVersion
from pipelines.extract.config import ExtractConfig
from pipelines.ingest.guards import triage
from pipelines.ingest.step import Step, StepResult, StepResults
from pipelines.lakehouse.documents import get_documents, update_documents
from pipelines.runtime import Runtime
from pipelines.settings import Settings

__all__ = ["Extract", "Extracted"]


class Extracted(StepResult):
    page_count: int | None = Field(default=None, description="Pages of the document (formats that have pages).")


class Extract(Step):
    """Extract each document's raw object into silver text and elements: two silver commits in all.

    A file that cannot be read is that document's error (``ExtractionError`` and subclasses, not
    retryable); the others go on.
    """

    name: ClassVar[str] = "extract"

    limits: ExtractConfig = Field(default_factory=ExtractConfig, description="Bounds on extracting one file.")

    @classmethod
    def from_settings(cls, settings: Settings) -> Extract:
        return cls(
            limits=ExtractConfig(
                timeout_s=settings.extract_timeout_s, memory_mb=settings.extract_memory_mb, ocr=settings.ocr_config
            )
        )

    def run(self, rt: Runtime, tenant: str, versions: dict[str, int]) -> StepResults:
        # The parsers are heavy: imported when a step first extracts, never by the API.
        from pipelines.extract.extractor import extract_bytes

        rows = get_documents(rt.lake, tenant, list(versions))
        acts_on = (DocumentStatus.queued, DocumentStatus.extracting)
        results, ready = triage(rows, versions, acts_on, idle=Extracted(idle=True))
        todo = {d: versions[d] for d in ready}
        started = update_documents(rt.lake, tenant, todo, status=DocumentStatus.extracting.value, error=None)
        changes: dict[str, dict[str, Any]] = {}
        for doc_id in todo:
            if doc_id not in started:
                results[doc_id] = StaleVersion("superseded before extraction", doc_id=doc_id)
                continue
            row = rows[doc_id]
            try:
                data = rt.objects.get(row["source_uri"])
                document = extract_bytes(data, doc_id=doc_id, filename=row["filename"], config=self.limits)
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
                "pages_json": json.dumps([p.model_dump(mode="json") for p in document.pages]),
            }
        columns = {name: {d: c[name] for d, c in changes.items()} for name in next(iter(changes.values()), {})}
        updated = update_documents(
            rt.lake, tenant, {d: versions[d] for d in changes}, status=DocumentStatus.embedding.value, **columns
        )
        for doc_id, change in changes.items():
            results[doc_id] = (
                Extracted(page_count=change["page_count"])
                if doc_id in updated
                else StaleVersion("superseded while extracting", doc_id=doc_id)
            )
        return results
