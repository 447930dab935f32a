"""gold.chunks: chunk text and embeddings, which double as the embedding cache."""

from __future__ import annotations

import pyarrow as pa

from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import CHUNKS, TableSpec

__all__ = [
    "cached_embeddings",
    "doc_chunks",
    "docs_chunks",
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
