"""gold.chunks: chunk text and embeddings, which double as the embedding cache."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.lakehouse.documents import now_utc, rows_table
from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import CHUNKS, TableSpec

__all__ = [
    "cached_embeddings",
    "delete_doc_chunks",
    "doc_chunks",
    "docs_chunks",
    "replace_doc_chunks",
    "replace_docs_chunks",
]


def _docs_filter(tenant: str, doc_ids: list[str], alias: str = "") -> str:
    ids = ", ".join(sql_quote(d) for d in sorted(set(doc_ids)))
    return f"{alias}tenant = {sql_quote(tenant)} AND {alias}doc_id IN ({ids})"


def doc_chunks(
    lake: Lake, tenant: str, doc_id: str, *, columns: list[str] | None = None, gold: TableSpec = CHUNKS
) -> pa.Table:
    """Every gold row of one document (in the base index's gold table unless ``gold`` says another)."""
    return docs_chunks(lake, tenant, [doc_id], columns=columns, gold=gold)


def docs_chunks(
    lake: Lake, tenant: str, doc_ids: list[str], *, columns: list[str] | None = None, gold: TableSpec = CHUNKS
) -> pa.Table:
    """Every gold row of these documents of a tenant, in one read."""
    if not doc_ids:
        return lake.read(gold, "false", columns=columns)
    return lake.read(gold, _docs_filter(tenant, doc_ids), columns=columns)


def cached_embeddings(
    lake: Lake, model_id: str, text_sha256s: list[str], *, tenant: str, golds: tuple[TableSpec, ...] = (CHUNKS,)
) -> dict[str, list[float]]:
    """Stored vectors for these text hashes made by ``model_id``, from any document of the tenant.

    ``golds`` are the gold tables to look in (a reindex also looks in the index it replaces).
    The cache stays inside a tenant: a cross-tenant hit would be measurably faster, and that timing
    would tell one tenant that another holds the same text.
    """
    if not text_sha256s:
        return {}
    found: dict[str, list[float]] = {}
    wanted = sorted(set(text_sha256s))
    for start in range(0, len(wanted), 200):
        shas = ", ".join(sql_quote(s) for s in wanted[start : start + 200])
        where = f"tenant = {sql_quote(tenant)} AND model_id = {sql_quote(model_id)} AND text_sha256 IN ({shas})"
        for gold in golds:
            table = lake.read(gold, where, columns=["text_sha256", "embedding"])
            for sha, emb in zip(
                table.column("text_sha256").to_pylist(), table.column("embedding").to_pylist(), strict=True
            ):
                if emb:
                    found.setdefault(sha, emb)
    return found


def replace_doc_chunks(
    lake: Lake, tenant: str, doc_id: str, rows: list[dict[str, Any]], *, gold: TableSpec = CHUNKS
) -> dict[str, Any]:
    """Make gold hold exactly ``rows`` for the document: upsert them and delete its other chunks."""
    return replace_docs_chunks(lake, tenant, [doc_id], rows, gold=gold)


def replace_docs_chunks(
    lake: Lake, tenant: str, doc_ids: list[str], rows: list[dict[str, Any]], *, gold: TableSpec = CHUNKS
) -> dict[str, Any]:
    """``replace_doc_chunks`` for many documents in one commit: gold ends up holding exactly ``rows``
    for the documents ``doc_ids`` (a document without rows loses all of its chunks)."""
    stamp = now_utc()
    source = rows_table(gold, [{**r, "updated_at": stamp} for r in rows])
    doc_pred = _docs_filter(tenant, doc_ids, alias="t.")
    return lake.merge(
        gold,
        source,
        predicate="t.tenant = s.tenant AND t.chunk_id = s.chunk_id",
        build=lambda m: (
            m.when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(predicate=doc_pred)
        ),
    )


def delete_doc_chunks(lake: Lake, tenant: str, doc_id: str, *, gold: TableSpec = CHUNKS) -> int:
    """Remove every gold row of the document; returns how many."""
    metrics = lake.delete(gold, f"tenant = {sql_quote(tenant)} AND doc_id = {sql_quote(doc_id)}")
    return int(metrics.get("num_deleted_rows", 0))
