"""Search indexes: which chunking + model built a gold table and its vector-store mirror.

An index is one (model, chunker) pair with its own gold table and its own vector table (LanceDB)
or namespace suffix (Pinecone). Exactly one index is ``active``: ingestion writes it and search
reads it. A reindex to another model or chunk size builds a ``building`` index next to it while the
active one keeps serving, then switches with one Delta commit to ``meta.indexes`` — every process
reads that table, so the switch is atomic for all of them. The old index is ``retired`` (kept, so
a switch can be undone) until it is dropped.

The first index is ``base``: its gold table is ``gold.chunks`` and its LanceDB table ``chunks``,
so lakes made before indexes existed keep working unchanged. The registry is created from
Settings on first use; after that it, not Settings, decides the chunker and model of the active
index (changing them is a reindex).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from pipelines.contracts.documents import ChunkerConfig
from pipelines.contracts.ids import sha256_hex
from pipelines.errors import ConfigError
from pipelines.lakehouse.documents import now_utc, rows_table
from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import CHUNKS, INDEXES, TableSpec

__all__ = [
    "BASE_INDEX",
    "IndexSpec",
    "IndexState",
    "activate_index",
    "active_index",
    "ensure_base_index",
    "get_index",
    "index_id_for",
    "list_indexes",
    "put_index",
]

BASE_INDEX = "base"
_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,40}$")


class IndexState(StrEnum):
    building = "building"
    active = "active"
    retired = "retired"
    dropped = "dropped"


class IndexSpec(BaseModel):
    """One index: how its chunks were cut and embedded, and where its rows and vectors live."""

    model_config = {"protected_namespaces": ()}

    index_id: str = Field(pattern=_ID.pattern, description="Short id; names the gold table and vector table.")
    model_id: str = Field(description="Model id recorded on the index's gold rows (the embedding-cache key).")
    model_path: str = Field(description="Local folder of the sentence-transformers model.")
    embed_backend: str = Field(default="torch", description="Inference backend of the model.")
    chunker: ChunkerConfig = Field(default_factory=ChunkerConfig)
    state: IndexState = IndexState.building
    created_at: datetime = Field(default_factory=now_utc)
    activated_at: datetime | None = None

    @property
    def gold(self) -> TableSpec:
        """The index's gold table (``gold.chunks`` for the base index)."""
        if self.index_id == BASE_INDEX:
            return CHUNKS
        return TableSpec(f"gold.chunks__{self.index_id}", CHUNKS.schema, CHUNKS.key)

    @property
    def vector_table(self) -> str:
        """LanceDB table name, or the suffix-bearing name of the Pinecone namespaces."""
        return "chunks" if self.index_id == BASE_INDEX else f"chunks__{self.index_id}"

    @property
    def namespace_suffix(self) -> str:
        return "" if self.index_id == BASE_INDEX else f"__{self.index_id}"

    def same_build(self, other: IndexSpec) -> bool:
        """Whether the two indexes would hold the same chunks and vectors."""
        return (self.model_id, self.embed_backend, self.chunker) == (other.model_id, other.embed_backend, other.chunker)


def index_id_for(model_id: str, embed_backend: str, chunker: ChunkerConfig) -> str:
    """A stable id for a (model, backend, chunker) build, so an interrupted reindex finds its index again."""
    return "i" + sha256_hex(f"{model_id}\x1f{embed_backend}\x1f{chunker.canonical_json()}")[:10]


def _row(spec: IndexSpec) -> dict[str, object]:
    return {
        "index_id": spec.index_id,
        "model_id": spec.model_id,
        "model_path": spec.model_path,
        "embed_backend": spec.embed_backend,
        "chunker_json": spec.chunker.model_dump_json(),
        "state": spec.state.value,
        "created_at": spec.created_at,
        "activated_at": spec.activated_at,
        "updated_at": now_utc(),
    }


def _spec(row: dict[str, object]) -> IndexSpec:
    return IndexSpec(
        index_id=str(row["index_id"]),
        model_id=str(row["model_id"]),
        model_path=str(row["model_path"]),
        embed_backend=str(row["embed_backend"] or "torch"),
        chunker=ChunkerConfig.model_validate_json(str(row["chunker_json"])),
        state=IndexState(str(row["state"])),
        created_at=row["created_at"],  # type: ignore[arg-type]
        activated_at=row["activated_at"],  # type: ignore[arg-type]
    )


def list_indexes(lake: Lake, *, include_dropped: bool = False) -> list[IndexSpec]:
    where = None if include_dropped else f"state <> {sql_quote(IndexState.dropped.value)}"
    specs = [_spec(r) for r in lake.read(INDEXES, where).to_pylist()]
    return sorted(specs, key=lambda s: s.created_at)


def get_index(lake: Lake, index_id: str) -> IndexSpec | None:
    rows = lake.read(INDEXES, f"index_id = {sql_quote(index_id)}").to_pylist()
    return _spec(rows[0]) if rows else None


def active_index(lake: Lake) -> IndexSpec | None:
    rows = lake.read(INDEXES, f"state = {sql_quote(IndexState.active.value)}").to_pylist()
    return _spec(rows[0]) if rows else None


def put_index(lake: Lake, spec: IndexSpec) -> None:
    """Insert or update one index row (never used to change which index is active)."""
    if spec.state == IndexState.active:
        raise ConfigError("use activate_index to make an index active")
    _merge(lake, [spec])
    if spec.state == IndexState.building:
        lake.ensure(spec.gold)


def _merge(lake: Lake, specs: list[IndexSpec]) -> None:
    source = rows_table(INDEXES, [_row(s) for s in specs])
    lake.merge(
        INDEXES,
        source,
        predicate=INDEXES.merge_on,
        build=lambda m: m.when_matched_update_all().when_not_matched_insert_all(),
    )


def activate_index(lake: Lake, index_id: str) -> IndexSpec:
    """Make ``index_id`` the active index and retire the previous one, in one commit."""
    target = get_index(lake, index_id)
    if target is None or target.state == IndexState.dropped:
        raise ConfigError(f"no index {index_id!r} to activate")
    now = now_utc()
    changes = [target.model_copy(update={"state": IndexState.active, "activated_at": now})]
    for other in list_indexes(lake):
        if other.state == IndexState.active and other.index_id != index_id:
            changes.append(other.model_copy(update={"state": IndexState.retired}))
    _merge(lake, changes)
    return changes[0]


def ensure_base_index(
    lake: Lake, *, model_id: str, model_path: Path, chunker: ChunkerConfig, embed_backend: str = "torch"
) -> IndexSpec:
    """The active index, creating ``base`` from the configured model and chunker on a new lake."""
    current = active_index(lake)
    if current is not None:
        return current
    base = IndexSpec(
        index_id=BASE_INDEX,
        model_id=model_id,
        model_path=str(model_path),
        embed_backend=embed_backend,
        chunker=chunker,
        state=IndexState.active,
        activated_at=now_utc(),
    )
    # Insert only if absent: several processes may start on a new lake at once.
    source = rows_table(INDEXES, [_row(base)])
    lake.merge(INDEXES, source, predicate=INDEXES.merge_on, build=lambda m: m.when_not_matched_insert_all())
    found = active_index(lake)
    if found is None:
        raise ConfigError("meta.indexes has no active index")
    return found
