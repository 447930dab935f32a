"""The extract step: a raw object's text and elements into silver, and its attachments into documents of their own."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, ClassVar

from pydantic import Field

from pipelines.contracts.documents import DocumentStatus, ExtractedDocument
from pipelines.contracts.ids import attachment_doc_id
from pipelines.errors import StaleVersion
from pipelines.extract.config import ExtractConfig
from pipelines.extract.ocr import OcrDeferred
from pipelines.ingest.guards import doc_locks, triage
from pipelines.ingest.lifecycle import delete_document
from pipelines.ingest.register import RegisterItem, register_objects
from pipelines.ingest.step import Step, StepResult, StepResults
from pipelines.lakehouse.documents import get_children, get_documents, update_documents
from pipelines.runtime import Runtime
from pipelines.settings import Settings

__all__ = ["ATTACHMENT_SOURCE", "Extract", "Extracted"]

ATTACHMENT_SOURCE = "attachment"
"""bronze.raw_objects ``source`` of an attachment registered by this step (uploads say ``api``, S3 ``s3``)."""


class Extracted(StepResult):
    page_count: int | None = Field(default=None, description="Pages of the document (formats that have pages).")
    needs_ocr: bool = Field(
        default=False,
        description=(
            "Nothing was extracted: the document needs OCR and the step defers it (``defer_ocr``). It stays "
            "``extracting``; the adapter sends it to the step without deferral, on the OCR lane."
        ),
    )
    children: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "Attachments registered as documents whose new versions need processing (doc_id → version): the "
            "adapter enqueues them as it would a batch upload."
        ),
    )


class Extract(Step):
    """Extract each document's raw object into silver text and elements: two silver commits in all.

    A file that cannot be read is that document's error (``ExtractionError`` and subclasses, not
    retryable); the others go on. A container's attachments (e-mails, archives) are registered as
    child documents through the upload path (``register_objects``), and children an earlier version had
    but this one has not are deleted. With ``limits.ocr.deferred`` a document that needs OCR is only
    looked at (its text layers, an image's header) and returned as ``needs_ocr``.
    """

    name: ClassVar[str] = "extract"

    limits: ExtractConfig = Field(default_factory=ExtractConfig, description="Bounds on extracting one file.")

    @classmethod
    def from_settings(cls, settings: Settings, *, defer_ocr: bool = False) -> Extract:
        """The step as configured; ``defer_ocr``: documents that need OCR come back as ``needs_ocr``, unread."""
        ocr = settings.ocr_config.model_copy(update={"deferred": defer_ocr})
        return cls(
            limits=ExtractConfig(
                timeout_s=settings.extract_timeout_s,
                memory_mb=settings.extract_memory_mb,
                ocr=ocr,
                attachments=settings.attachment_config,
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
        depths = _depths(rt, tenant, {d: rows[d] for d in todo}, cap=self.limits.attachments.max_depth)
        documents: dict[str, ExtractedDocument] = {}
        changes: dict[str, dict[str, Any]] = {}
        for doc_id in todo:
            if doc_id not in started:
                results[doc_id] = StaleVersion("superseded before extraction", doc_id=doc_id)
                continue
            row = rows[doc_id]
            try:
                data = rt.objects.get(row["source_uri"])
                document = extract_bytes(
                    data, doc_id=doc_id, filename=row["filename"], config=self.limits, depth=depths.get(doc_id, 0)
                )
            except OcrDeferred:
                # Left `extracting`, unchanged: the OCR lane's run of this step picks the same version up.
                results[doc_id] = Extracted(needs_ocr=True)
                continue
            except Exception as e:  # one unreadable file is its document's error, not the batch's
                results[doc_id] = e
                continue
            documents[doc_id] = document
            changes[doc_id] = {
                "format": document.format.value,
                "mime": document.mime,
                "text": document.text,
                "elements_json": json.dumps([e.model_dump(mode="json") for e in document.elements]),
                "page_count": document.page_count,
                "page_errors_json": json.dumps([p.model_dump() for p in document.page_errors]),
                "pages_json": json.dumps([p.model_dump(mode="json") for p in document.pages]),
                "attachment_errors_json": json.dumps([a.model_dump() for a in document.attachment_errors]),
            }
        # Documents that have or may have had attachments: a container, or a later version of anything (an
        # e-mail replaced by a PDF loses its children). A first version of a plain file has none to look up.
        families = sorted(d for d, doc in documents.items() if doc.format.container or versions[d] > 1)
        columns = {name: {d: c[name] for d, c in changes.items()} for name in next(iter(changes.values()), {})}
        # Under the families' locks no upload or delete can move them to another version between the check
        # and the commit, so children are registered for exactly the version that is committed.
        with doc_locks(rt, tenant, families):
            children = _attach(rt, tenant, {d: versions[d] for d in families}, documents)
            updated = update_documents(
                rt.lake, tenant, {d: versions[d] for d in changes}, status=DocumentStatus.embedding.value, **columns
            )
        for doc_id, change in changes.items():
            results[doc_id] = (
                Extracted(page_count=change["page_count"], children=children.get(doc_id, {}))
                if doc_id in updated
                else StaleVersion("superseded while extracting", doc_id=doc_id)
            )
        return results


def _depths(rt: Runtime, tenant: str, rows: dict[str, dict[str, Any]], *, cap: int) -> dict[str, int]:
    """How many containers each document sits below (absent: 0, an upload), counted up to ``cap + 1``."""
    depth: dict[str, int] = {}
    pending = {d: r["parent_doc_id"] for d, r in rows.items() if r.get("parent_doc_id")}
    level = 0
    while pending and level <= cap:
        level += 1
        depth.update(dict.fromkeys(pending, level))
        parents = get_documents(rt.lake, tenant, sorted(set(pending.values())))
        pending = {
            d: parents[p]["parent_doc_id"]
            for d, p in pending.items()
            if p in parents and parents[p].get("parent_doc_id")
        }
    return depth


def _attach(
    rt: Runtime, tenant: str, versions: dict[str, int], documents: dict[str, ExtractedDocument]
) -> dict[str, dict[str, int]]:
    """Make each container's children those of the version extracted; returns, per parent, the children to process.

    Call it holding the parents' locks. A parent no longer at ``versions`` is left alone (its commit fails
    as stale). Children are registered in one call (identical bytes and metadata are duplicates: nothing
    is written for them), and the children this version no longer has are deleted with theirs.
    """
    if not versions:
        return {}
    current = get_documents(rt.lake, tenant, list(versions))
    live = [
        d
        for d, v in versions.items()
        if d in current and current[d]["version"] == v and current[d]["status"] == DocumentStatus.extracting
    ]
    existing = get_children(rt.lake, tenant, live)
    items: list[RegisterItem] = []
    wanted: dict[str, set[str]] = {}
    for parent in live:
        metadata = json.loads(current[parent]["metadata_json"] or "{}")
        seen: Counter[str] = Counter()
        ids = wanted[parent] = set()
        for attachment in documents[parent].attachments:
            child_id = attachment_doc_id(parent, attachment.filename, seen[attachment.filename])
            seen[attachment.filename] += 1
            ids.add(child_id)
            items.append(
                RegisterItem(
                    data=attachment.data,
                    filename=attachment.filename,
                    doc_id=child_id,
                    metadata=metadata,
                    parent_doc_id=parent,
                    # Exactly the container's readers, public included: an attachment is never more visible.
                    acl=current[parent].get("acl"),
                )
            )
    registered = register_objects(rt, items, tenant=tenant, source=ATTACHMENT_SOURCE)
    children: dict[str, dict[str, int]] = {}
    for item, result in zip(items, registered, strict=True):
        if result.needs_processing:
            assert item.parent_doc_id is not None
            children.setdefault(item.parent_doc_id, {})[result.doc_id] = result.version
    for parent in live:
        for row in existing.get(parent, []):
            if row["doc_id"] not in wanted[parent]:
                delete_document(rt, tenant, row["doc_id"])
    return children
