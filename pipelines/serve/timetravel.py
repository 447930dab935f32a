"""Search as of an earlier moment: exact search over the gold table read by Delta time travel.

An audit asks "what could a RAG application have retrieved then?". The vector store only knows
now, but gold keeps every version until a vacuum removes its files, and each gold row carries its
embedding — so the answer is an exact (brute-force) cosine search over the rows of that snapshot.
Exact is affordable here: it is an audit path, and it is what the ANN index approximates anyway.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder

from pipelines.contracts.acl import readable
from pipelines.contracts.ids import MetadataValue
from pipelines.contracts.search import SearchHit, SearchQuery
from pipelines.errors import InvalidInput
from pipelines.lakehouse.lake import sql_quote
from pipelines.runtime import Runtime

__all__ = ["search_as_of"]

_COLUMNS = [
    "chunk_id",
    "doc_id",
    "doc_version",
    "text",
    "filename",
    "page_start",
    "page_end",
    "char_start",
    "char_end",
    "metadata_json",
    "embedding",
    "acl",
]


def _snapshot_rows(rt: Runtime, as_of: int | datetime, tenant: str) -> pa.Table:
    gold = rt.index().gold
    dt = rt.lake.snapshot(gold)
    newest = dt.version()
    try:
        if isinstance(as_of, int) and as_of > newest:
            raise InvalidInput(f"as_of version {as_of} is newer than the newest gold version {newest}")
        if isinstance(as_of, datetime):
            _check_not_before_creation(dt, as_of)
        dt.load_as_version(as_of)
        # A version written before access control has no acl column: every document was public then.
        have = {f.name for f in dt.schema().fields}
        columns = [c if c in have else f"NULL AS {c}" for c in _COLUMNS]
        sql = f"SELECT {', '.join(columns)} FROM t WHERE tenant = {sql_quote(tenant)}"
        return pa.table(QueryBuilder().register("t", dt).execute(sql).read_all())
    except InvalidInput:
        raise
    except Exception as e:  # delta-rs: no such version, a timestamp before the table, vacuumed files
        raise InvalidInput(f"gold cannot be read as of {as_of}: {e}") from e


def _check_not_before_creation(dt: DeltaTable, as_of: datetime) -> None:
    # delta-rs resolves a time before the first commit to version 0: that would answer with data
    # that did not exist yet, so refuse it.
    first = min(dt.history(), key=lambda h: int(h["version"]))
    created = datetime.fromtimestamp(int(first["timestamp"]) / 1000, tz=UTC)
    stamp = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    if stamp < created:
        raise InvalidInput(f"as_of {stamp.isoformat()} is before gold was created ({created.isoformat()})")


def _matches(metadata: dict[str, MetadataValue], wanted: dict[str, MetadataValue]) -> bool:
    return all(metadata.get(k) == v for k, v in wanted.items())


def search_as_of(rt: Runtime, query: SearchQuery, *, tenant: str) -> list[SearchHit]:
    """Top-k chunks of ``tenant`` in gold as it was at ``query.as_of`` (a version or a timestamp).

    Raises:
        InvalidInput: the version does not exist (or was vacuumed), or the time predates the table.
    """
    assert query.as_of is not None
    rows = _snapshot_rows(rt, query.as_of, tenant).to_pylist()
    # The acl each row had at that version: an audit replays what this caller could have read then.
    rows = [r for r in rows if readable(r["acl"], query.principals)]
    if query.filter:
        rows = [r for r in rows if _matches(json.loads(r["metadata_json"] or "{}"), query.filter)]
    rows = [r for r in rows if r["embedding"]]
    if not rows:
        return []
    matrix = np.asarray([r["embedding"] for r in rows], dtype=np.float32)
    vector = np.asarray(rt.query_embedder().encode_query(query.query), dtype=np.float32)
    # Gold vectors are unit length (encode normalises), so the dot product is the cosine.
    scores = matrix @ vector
    order = np.argsort(-scores)[: query.top_k]
    return [
        SearchHit(
            chunk_id=rows[i]["chunk_id"],
            doc_id=rows[i]["doc_id"],
            version=rows[i]["doc_version"],
            filename=rows[i]["filename"],
            text=rows[i]["text"] or "",
            score=round(float(scores[i]), 6),
            page_start=rows[i]["page_start"],
            page_end=rows[i]["page_end"],
            char_start=rows[i]["char_start"] or 0,
            char_end=rows[i]["char_end"] or 0,
            metadata=json.loads(rows[i]["metadata_json"] or "{}"),
        )
        for i in order
    ]
