"""bronze.document_updates reads that version new changes: the newest version an event already claims."""

from __future__ import annotations

from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import UPDATES

__all__ = ["newest_event_version", "newest_event_versions"]


def newest_event_version(lake: Lake, tenant: str, doc_id: str) -> int:
    """The highest version any change event names for the document (0 when none).

    A new change (a PATCH, a delete) must get a version above it: otherwise an event still waiting
    for the stream would win over it — a pending patch would resurrect a deleted document.
    """
    return newest_event_versions(lake, tenant, [doc_id]).get(doc_id, 0)


def newest_event_versions(lake: Lake, tenant: str, doc_ids: list[str]) -> dict[str, int]:
    """``newest_event_version`` of many documents in one read (documents without events are left out)."""
    newest: dict[str, int] = {}
    if not doc_ids:
        return newest
    ids = ", ".join(sql_quote(d) for d in sorted(set(doc_ids)))
    where = f"tenant = {sql_quote(tenant)} AND doc_id IN ({ids})"
    table = lake.read(UPDATES, where, columns=["doc_id", "version"])
    for doc_id, version in zip(table.column("doc_id").to_pylist(), table.column("version").to_pylist(), strict=True):
        if version is not None and version > newest.get(doc_id, 0):
            newest[doc_id] = version
    return newest
