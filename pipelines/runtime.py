"""The services one process needs, built once from Settings and passed to every pipeline function."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.contracts.ids import sha256_hex
from pipelines.embed.model import EmbedConfig, Embedder, get_embedder, get_query_embedder, load_tokenizer
from pipelines.errors import ConfigError
from pipelines.lakehouse.indexes import IndexSpec, ensure_base_index, list_indexes
from pipelines.lakehouse.indexes import active_index as read_active_index
from pipelines.lakehouse.lake import Lake
from pipelines.objectstore.store import LocalObjectStore, ObjectStore, S3ObjectStore
from pipelines.settings import Settings, backend_model_id
from pipelines.storage.location import check_remote_scheme, delta_options, is_remote, lance_options
from pipelines.storage.locks import Locks, locks_for
from pipelines.storage.probe import verify_object_store
from pipelines.storage.records import Records, records_for
from pipelines.vectorstore.base import VectorStore
from pipelines.vectorstore.lance import LanceVectorStore

__all__ = ["Runtime", "executor_runtime"]

log = logging.getLogger(__name__)


def _object_store(settings: Settings) -> ObjectStore:
    if settings.object_store_url:
        return S3ObjectStore.from_url(
            settings.object_store_url, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region
        )
    return LocalObjectStore(settings.objects_dir)


def _vector_store(settings: Settings, index: IndexSpec, locks: Locks) -> VectorStore:
    if settings.vector_store == "pinecone":
        from pipelines.vectorstore.pinecone import PineconeVectorStore

        if not settings.pinecone_api_key or not settings.pinecone_host:
            raise ConfigError("the pinecone vector store needs DOCLAKE_PINECONE_API_KEY and DOCLAKE_PINECONE_HOST")
        return PineconeVectorStore(
            api_key=settings.pinecone_api_key.get_secret_value(),
            host=settings.pinecone_host,
            namespace_suffix=index.namespace_suffix,
        )
    root = settings.vectors_root
    return LanceVectorStore(
        root,
        table_name=index.vector_table,
        ann_index_min_rows=settings.ann_index_min_rows,
        storage_options=lance_options(settings) if is_remote(root) else None,
        locks=locks,
    )


def _lake(settings: Settings, locks: Locks) -> Lake:
    """The lake at ``settings.lake_root``; on S3 only after the endpoint proved it refuses a second
    conditional PUT (otherwise concurrent commits would be lost without an error)."""
    root = settings.lake_root
    for url in (root, settings.vectors_root):
        check_remote_scheme(url)
    if not is_remote(root):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return Lake(root, locks=locks)
    verify_object_store(settings, root)
    if settings.vector_store == "lancedb" and is_remote(settings.vectors_root):
        verify_object_store(settings, settings.vectors_root)
    if not locks.spans_hosts:
        log.warning(
            "the lake is on %s but DOCLAKE_LOCK_URL is unset: document and table locks hold on this host only;"
            " set DOCLAKE_LOCK_URL=redis://… before a second host writes",
            root,
        )
    return Lake(root, locks=locks, storage_options=delta_options(settings))


# How long a process trusts its copy of the active index before re-reading meta.indexes. A switch
# reaches every process within this time; writers re-check it uncached under the document lock.
_INDEX_TTL_S = 1.0
# Past the TTL a reader keeps the copy while one background thread re-reads the table (a Delta read
# costs 20-40 ms, which every query landing on an expired copy would otherwise pay); past this age a
# reader waits for the table itself.
_INDEX_STALE_MAX_S = 3.0


@dataclass
class Runtime:
    settings: Settings
    lake: Lake
    objects: ObjectStore
    locks: Locks
    records: Records
    _stores: dict[str, VectorStore] = field(default_factory=dict, repr=False)
    _open_store: Callable[[IndexSpec], VectorStore] | None = field(default=None, repr=False)
    _index: IndexSpec | None = field(default=None, repr=False)
    _index_read_at: float = field(default=0.0, repr=False)
    _pinned: IndexSpec | None = field(default=None, repr=False)
    _threads: int | None = field(default=None, repr=False)
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _index_refreshing: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _doc_locks_held: threading.local = field(default_factory=threading.local, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        threads: int | None = None,
        vector_store: Callable[[IndexSpec], VectorStore] | None = None,
    ) -> Runtime:
        """Build the services ``settings`` name (a local or S3 lake, file or Redis locks) and make sure
        the tables exist.

        Args:
            settings: the configuration.
            threads: torch threads (default: ``settings.torch_threads``).
            vector_store: how this process opens an index's vector store (default: as ``settings``
                say). Tests pass one to run a process whose store fails on demand.
        """
        locks = locks_for(settings)
        lake = _lake(settings, locks)
        lake.ensure_tables()
        runtime = cls(
            settings=settings,
            lake=lake,
            objects=_object_store(settings),
            locks=locks,
            records=records_for(settings),
            _threads=threads if threads is not None else settings.torch_threads,
            _open_store=vector_store,
        )
        runtime._index = ensure_base_index(
            lake,
            model_id=settings.embedding_model_id,
            model_path=settings.resolved_model_path(),
            chunker=settings.chunker,
            embed_backend=settings.new_lake_embed_backend,
        )
        runtime._index_read_at = time.monotonic()
        # Other indexes' gold tables (made by an older doclake) get the columns added since, as silver does.
        lake.ensure_tables(existing=[i.gold for i in list_indexes(lake) if i.gold.name != "gold.chunks"])
        active = runtime._index
        # Unset, the backend follows the lake (a torch lake stays torch); set, it must match the lake.
        wanted_id = backend_model_id(settings.model_id, settings.embed_backend or active.embed_backend)
        configured = (wanted_id, str(settings.resolved_model_path()), settings.chunker)
        if configured != (active.model_id, active.model_path, active.chunker):
            # The registry, not Settings, decides once a lake exists: say so instead of silently ignoring.
            log.warning(
                "settings name model %s / chunker %s but the active index %s uses %s / %s: run `doclake reindex`"
                " to change it",
                wanted_id,
                settings.chunker.model_dump(),
                active.index_id,
                active.model_id,
                active.chunker.model_dump(),
            )
        runtime.vectors_for(runtime._index)  # fail fast on a misconfigured store
        return runtime

    def index(self, *, fresh: bool = False) -> IndexSpec:
        """The active index.

        Re-read in the background once this process's copy is a second old, inline past 3 s, or now
        with ``fresh`` (writers, under the document lock). A ``pinned`` view always answers its index.
        """
        if self._pinned is not None:
            return self._pinned
        age = time.monotonic() - self._index_read_at
        if fresh or self._index is None or age > _INDEX_STALE_MAX_S:
            return self._read_index()
        if age > _INDEX_TTL_S and self._index_refreshing.acquire(blocking=False):
            threading.Thread(target=self._refresh_index, name="index-refresh", daemon=True).start()
        return self._index

    def _read_index(self) -> IndexSpec:
        started = time.monotonic()
        found = read_active_index(self.lake)
        if found is None:
            raise ConfigError("meta.indexes has no active index")
        self._index, self._index_read_at = found, started
        return found

    def _refresh_index(self) -> None:
        try:
            self._read_index()
        except Exception:
            log.warning("re-reading the active index failed; the next query retries", exc_info=True)
        finally:
            self._index_refreshing.release()

    def pinned(self, index: IndexSpec) -> Runtime:
        """A view of this runtime whose active index is ``index`` (the same lake, stores, models and locks).

        Read paths (search, as_of search) then answer from ``index`` exactly as they answer from the
        active one: the evaluation of a building index before a switch. Never used for writes.
        """
        return dataclasses.replace(self, _pinned=index)

    def indexes(self) -> list[IndexSpec]:
        """Every index that still has tables (active, building, retired)."""
        return list_indexes(self.lake)

    def vectors_for(self, index: IndexSpec) -> VectorStore:
        """The vector store of an index, opened once per process."""
        with self._mutex:
            store = self._stores.get(index.index_id)
            if store is None:
                opened = (
                    self._open_store(index) if self._open_store else _vector_store(self.settings, index, self.locks)
                )
                store = self._stores[index.index_id] = opened
            return store

    @property
    def vectors(self) -> VectorStore:
        """The vector store of the active index."""
        return self.vectors_for(self.index())

    def embed_config_for(self, index: IndexSpec) -> EmbedConfig:
        backend = index.embed_backend
        return EmbedConfig(
            model_path=Path(index.model_path),
            model_id=index.model_id,
            batch_size=self.settings.embed_batch_size,
            threads=self._threads,
            backend=backend,  # type: ignore[arg-type]  # validated when the index was recorded
            cache_dir=self.settings.resolved_embed_cache_dir() if backend != "torch" else None,
        )

    @property
    def embed_config(self) -> EmbedConfig:
        return self.embed_config_for(self.index())

    def embedder(self, index: IndexSpec | None = None) -> Embedder:
        """The ingestion embedder of an index (default: the active one)."""
        return get_embedder(self.embed_config_for(index or self.index()))

    def query_embedder(self, index: IndexSpec | None = None) -> Embedder:
        """The search embedder: its own model instance, so a bulk encode never holds up a query."""
        return get_query_embedder(self.embed_config_for(index or self.index()))

    def tokenizer(self, index: IndexSpec | None = None) -> Any:
        return load_tokenizer(Path((index or self.index()).model_path))

    @contextmanager
    def doc_lock(self, tenant: str, doc_id: str) -> Iterator[None]:
        """Serialise writers of one document across processes, and hosts with Redis locks (register,
        steps, delete).

        Versions guard correctness; the lock keeps a delete from interleaving with a step that
        already checked the version but has not yet written gold or the vector store.

        Re-entrant in a thread: a step holding a container's lock registers or deletes its attachments
        (their locks), and a batch may hold an attachment's lock already.
        """
        name = "docs/" + sha256_hex(f"{tenant}\x1f{doc_id}")[:32]
        held: set[str] = self._doc_locks_held.__dict__.setdefault("names", set())
        if name in held:
            yield
            return
        with self.locks.exclusive(name, timeout=600):
            held.add(name)
            try:
                yield
            finally:
                held.discard(name)


_EXECUTOR_RUNTIMES: dict[str, Runtime] = {}
_EXECUTOR_LOCK = threading.Lock()


def executor_runtime(settings: Settings) -> Runtime:
    """This process's Runtime for ``settings``, built on first use and kept for the process's life.

    For code that Spark runs on its executors (the stream's planner, the Spark reindex): a Python
    worker serves many tasks, and building a Runtime per task would load the model each time.
    """
    key = settings.model_dump_json()
    with _EXECUTOR_LOCK:
        rt = _EXECUTOR_RUNTIMES.get(key)
        if rt is None:
            rt = _EXECUTOR_RUNTIMES[key] = Runtime.from_settings(settings)
        return rt
