"""Arrow schemas of the Delta tables (DESIGN §3).

Types are chosen so Spark + delta-spark read and write the same tables: UTC timestamps (not
timestamp_ntz), plain strings, int32/int64, list<string>, list<float>.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "CHUNKS",
    "DOCUMENTS",
    "EVAL_RESULTS",
    "EVAL_SETS",
    "INDEXES",
    "QUARANTINE",
    "RAW_OBJECTS",
    "TABLES",
    "UPDATES",
    "TableSpec",
]

_TS = pa.timestamp("us", tz="UTC")


class TableSpec:
    def __init__(self, name: str, schema: pa.Schema, key: tuple[str, ...]) -> None:
        self.name = name
        self.schema = schema
        self.key = key

    @property
    def merge_on(self) -> str:
        """The MERGE condition matching a source row (``s``) to its target row (``t``) by the table's key."""
        return " AND ".join(f"t.{k} = s.{k}" for k in self.key)

    @property
    def relpath(self) -> str:
        layer, table = self.name.split(".")
        return f"{layer}/{table}"


RAW_OBJECTS = TableSpec(
    "bronze.raw_objects",
    pa.schema(
        [
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("version", pa.int64(), nullable=False),
            pa.field("uri", pa.string()),
            pa.field("sha256", pa.string()),
            pa.field("size_bytes", pa.int64()),
            pa.field("mime", pa.string()),
            pa.field("filename", pa.string()),
            pa.field("source", pa.string()),
            pa.field("metadata_json", pa.string()),
            pa.field("received_at", _TS),
        ]
    ),
    key=("tenant", "doc_id", "version"),
)

DOCUMENTS = TableSpec(
    "silver.documents",
    pa.schema(
        [
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("version", pa.int64(), nullable=False),
            pa.field("status", pa.string(), nullable=False),
            pa.field("error", pa.string()),
            pa.field("filename", pa.string()),
            pa.field("mime", pa.string()),
            pa.field("format", pa.string()),
            pa.field("source_uri", pa.string()),
            pa.field("content_sha256", pa.string()),
            pa.field("size_bytes", pa.int64()),
            pa.field("metadata_json", pa.string()),
            pa.field("text", pa.string()),
            pa.field("elements_json", pa.string()),
            pa.field("page_count", pa.int32()),
            pa.field("page_errors_json", pa.string()),
            # Added after v1: Lake.ensure_tables adds it to older lakes (JSON list of PageInfo).
            pa.field("pages_json", pa.string()),
            # Added after v1 with attachments: the container this document was extracted from (null for
            # uploads), and the container's own refused attachments (JSON list of AttachmentError).
            pa.field("parent_doc_id", pa.string()),
            pa.field("attachment_errors_json", pa.string()),
            # Added with access control: the principals who may read the document (null: the whole tenant).
            pa.field("acl", pa.list_(pa.string())),
            pa.field("chunks", pa.int32()),
            pa.field("chunks_embedded", pa.int32()),
            pa.field("chunks_reused", pa.int32()),
            pa.field("model_id", pa.string()),
            pa.field("chunker_id", pa.string()),
            pa.field("created_at", _TS),
            pa.field("updated_at", _TS),
        ]
    ),
    key=("tenant", "doc_id"),
)

CHUNKS = TableSpec(
    "gold.chunks",
    pa.schema(
        [
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("chunk_id", pa.string(), nullable=False),
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("doc_version", pa.int64(), nullable=False),
            pa.field("ordinal", pa.int32()),
            pa.field("text", pa.string()),
            pa.field("text_sha256", pa.string()),
            pa.field("page_start", pa.int32()),
            pa.field("page_end", pa.int32()),
            pa.field("char_start", pa.int64()),
            pa.field("char_end", pa.int64()),
            pa.field("heading_path", pa.list_(pa.string())),
            pa.field("embedding", pa.list_(pa.float32())),
            pa.field("model_id", pa.string()),
            pa.field("chunker_id", pa.string()),
            pa.field("filename", pa.string()),
            pa.field("metadata_json", pa.string()),
            pa.field("updated_at", _TS),
            # The document's acl at doc_version (null: public), so the vector stores are rebuilt from gold
            # with it and as_of search replays who could read what then.
            pa.field("acl", pa.list_(pa.string())),
        ]
    ),
    key=("tenant", "chunk_id"),
)

# The embedded profile's stream source: the API (PATCH, DELETE) and producers append change events.
UPDATES = TableSpec(
    "bronze.document_updates",
    pa.schema(
        [
            pa.field("event_id", pa.string()),
            pa.field("tenant", pa.string()),
            pa.field("doc_id", pa.string()),
            pa.field("op", pa.string()),
            pa.field("version", pa.int64()),
            pa.field("text", pa.string()),
            pa.field("source_uri", pa.string()),
            pa.field("metadata_json", pa.string()),
            pa.field("ts", _TS),
            pa.field("received_at", _TS),
            # The event's acl as JSON: null = not given (keep), "null" = public, '["group:x"]' = set.
            pa.field("acl_json", pa.string()),
        ]
    ),
    key=("event_id",),
)

# Events (or files) that failed validation or could not be applied, kept with the error: never dropped.
QUARANTINE = TableSpec(
    "bronze.quarantine",
    pa.schema(
        [
            pa.field("event_id", pa.string(), nullable=False),
            pa.field("source", pa.string()),
            pa.field("tenant", pa.string()),
            pa.field("doc_id", pa.string()),
            pa.field("payload", pa.string()),
            pa.field("error", pa.string()),
            pa.field("quarantined_at", _TS),
        ]
    ),
    key=("event_id",),
)

INDEXES = TableSpec(
    "meta.indexes",
    pa.schema(
        [
            pa.field("index_id", pa.string(), nullable=False),
            pa.field("model_id", pa.string()),
            pa.field("model_path", pa.string()),
            pa.field("embed_backend", pa.string()),
            pa.field("chunker_json", pa.string()),
            pa.field("state", pa.string()),
            pa.field("created_at", _TS),
            pa.field("activated_at", _TS),
            pa.field("updated_at", _TS),
        ]
    ),
    key=("index_id",),
)

# Golden sets (BEIR qrels with their query texts): one row per (query, judged document) of a tenant's set.
EVAL_SETS = TableSpec(
    "meta.eval_sets",
    pa.schema(
        [
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("eval_set", pa.string(), nullable=False),
            pa.field("query_id", pa.string(), nullable=False),
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("relevance", pa.int32()),
            pa.field("query", pa.string()),
            pa.field("set_sha256", pa.string()),
            pa.field("imported_at", _TS),
        ]
    ),
    key=("tenant", "eval_set", "query_id", "doc_id"),
)

# nDCG@10 / Recall@10 of an index on an eval set, per gold version; every key column is non-null
# (a MERGE's NULL = NULL is false, which would insert a rerun twice).
EVAL_RESULTS = TableSpec(
    "meta.eval_results",
    pa.schema(
        [
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("eval_set", pa.string(), nullable=False),
            pa.field("set_sha256", pa.string(), nullable=False),
            pa.field("index_id", pa.string(), nullable=False),
            pa.field("gold_version", pa.int64(), nullable=False),
            pa.field("snapshot", pa.string(), nullable=False),
            pa.field("mode", pa.string(), nullable=False),
            pa.field("top_k", pa.int32(), nullable=False),
            pa.field("as_of", pa.string()),
            pa.field("queries", pa.int32()),
            pa.field("ndcg_at_10", pa.float64()),
            pa.field("recall_at_10", pa.float64()),
            pa.field("duration_s", pa.float64()),
            pa.field("evaluated_at", _TS),
        ]
    ),
    key=("tenant", "eval_set", "set_sha256", "index_id", "gold_version", "snapshot", "mode", "top_k"),
)

TABLES: dict[str, TableSpec] = {
    t.name: t for t in (RAW_OBJECTS, DOCUMENTS, CHUNKS, UPDATES, QUARANTINE, INDEXES, EVAL_SETS, EVAL_RESULTS)
}
