"""bronze.document_updates reads that version new changes: the newest version an event already claims."""

from __future__ import annotations

from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import UPDATES

__all__ = ["newest_event_version"]


def newest_event_version(lake: Lake, tenant: str, doc_id: str) -> int:
    """The highest version any change event names for the document (0 when none).

    A new change (a PATCH, a delete) must get a version above it: otherwise an event still waiting
    for the stream would win over it — a pending patch would resurrect a deleted document.
    """
    where = f"tenant = {sql_quote(tenant)} AND doc_id = {sql_quote(doc_id)}"
    versions = lake.read(UPDATES, where, columns=["version"]).column("version").to_pylist()
    return max((v for v in versions if v is not None), default=0)
