"""Pinecone vector store (the ``pinecone`` SDK; ``pinecone-client`` is the deprecated name).

Layout: one namespace per tenant; vector id ``<doc_id>#<chunk_id>`` so a document's vectors can be
listed by prefix (serverless indexes cannot delete by metadata filter). Metadata carries the ids,
spans and the user's metadata under ``m.<key>`` — never the chunk text, which stays in gold and is
hydrated at query time (Pinecone allows 40 KB of metadata per record). Requests respect Pinecone's
limits: at most 1000 vectors and 2 MB per upsert, 1000 ids per delete; 429 and 5xx are retried with
exponential backoff.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

from pipelines.contracts.acl import readers, stored_acl
from pipelines.contracts.documents import VectorRecord
from pipelines.contracts.ids import MetadataValue
from pipelines.errors import SearchModeUnsupported, VectorStoreError
from pipelines.retry import retry
from pipelines.vectorstore.base import StoredId, VectorHit

__all__ = ["PineconeVectorStore", "acl_filter"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BATCH_VECTORS = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_IDS_PER_DELETE = 1000
_USER_PREFIX = "m."
# A list of strings (public documents: [PUBLIC]); outside the user's ``m.`` keys, so no metadata key can shadow it.
_ACL_KEY = "acl"
# Backoff between retries of a throttled or failing request: 0.25 s doubled per attempt, at most 8 s.
_BACKOFF_BASE_S = 0.25
_BACKOFF_CAP_S = 8.0
# Suffix of a non-base index's namespaces (pipelines.indexes.index_id_for makes "i" + 10 hex digits).
_INDEX_SUFFIX = re.compile(r"__i[0-9a-f]{10}$")


def _status_of(error: Exception) -> int | None:
    for attr in ("status", "status_code", "code"):
        value = getattr(error, attr, None)
        if isinstance(value, int):
            return value
    return None


class PineconeVectorStore:
    keyword_search = False  # no text is stored in Pinecone (see keyword_query)

    def __init__(
        self,
        *,
        api_key: str,
        host: str,
        namespace_suffix: str = "",
        max_retries: int = 5,
        index: Any = None,
    ) -> None:
        if index is None:
            from pinecone import Pinecone

            # An http:// host is only accepted for a local double; the SDK forces TLS otherwise.
            index = Pinecone(api_key=api_key, host=host).Index(host=host)
        self._index = index
        self.namespace_suffix = namespace_suffix
        self.max_retries = max_retries

    def _ns(self, tenant: str) -> str:
        return f"{tenant}{self.namespace_suffix}"

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one request, retrying 429 and 5xx answers up to ``max_retries`` times.

        Raises:
            VectorStoreError: the request failed; retryable when the last answer was transient.
        """

        def transient(e: Exception) -> bool:
            status = _status_of(e)
            if status == 429 or (status is not None and status >= 500):
                log.warning("pinecone %s answered %s", what, status)
                return True
            return False

        try:
            return retry(
                fn,
                retry_on=transient,
                attempts=self.max_retries + 1,
                base=_BACKOFF_BASE_S,
                cap=_BACKOFF_CAP_S,
                what=f"pinecone {what}",
                give_up=lambda e: VectorStoreError(f"pinecone {what} failed: {e}", retryable=True),
            )
        except VectorStoreError:
            raise
        except Exception as e:
            raise VectorStoreError(f"pinecone {what} failed: {e}", retryable=False) from e

    @staticmethod
    def _metadata(r: VectorRecord) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "doc_id": r.doc_id,
            "doc_version": r.doc_version,
            "char_start": r.char_start,
            "char_end": r.char_end,
        }
        # Pinecone rejects null metadata values: absent fields are simply left out.
        if r.filename is not None:
            meta["filename"] = r.filename
        if r.page_start is not None:
            meta["page_start"] = r.page_start
        if r.page_end is not None:
            meta["page_end"] = r.page_end
        for key, value in r.metadata.items():
            meta[_USER_PREFIX + key] = value
        meta[_ACL_KEY] = stored_acl(r.acl)
        return meta

    def upsert(self, records: list[VectorRecord]) -> None:
        by_ns: dict[str, list[dict[str, Any]]] = {}
        for r in records:
            by_ns.setdefault(self._ns(r.tenant), []).append(
                {"id": f"{r.doc_id}#{r.id}", "values": r.vector, "metadata": self._metadata(r)}
            )
        for ns, vectors in by_ns.items():
            for batch in _batches(vectors):
                self._call("upsert", partial(self._index.upsert, vectors=batch, namespace=ns))

    def delete(self, ids: list[str], *, tenant: str, doc_id: str) -> None:
        full = [f"{doc_id}#{i}" for i in ids]
        for start in range(0, len(full), MAX_IDS_PER_DELETE):
            batch = full[start : start + MAX_IDS_PER_DELETE]
            self._call("delete", partial(self._index.delete, ids=batch, namespace=self._ns(tenant)))

    def delete_document(self, tenant: str, doc_id: str) -> None:
        ids = self.document_ids(tenant, doc_id)
        self.delete(ids, tenant=tenant, doc_id=doc_id)

    def keyword_query(
        self,
        text: str,
        *,
        k: int,
        tenant: str,
        filter: dict[str, MetadataValue] | None = None,
        principals: Sequence[str] = (),
    ) -> list[VectorHit]:
        """Not offered: this adapter stores no text in Pinecone (gold holds it), so there is nothing to
        index for BM25; sparse-dense Pinecone indexes would need a sparse encoder we do not ship."""
        raise SearchModeUnsupported("keyword and hybrid search need the lancedb vector store (pinecone is dense-only)")

    def query(
        self,
        vector: list[float],
        *,
        k: int,
        tenant: str,
        filter: dict[str, MetadataValue] | None = None,
        principals: Sequence[str] = (),
    ) -> list[VectorHit]:
        conditions: list[dict[str, Any]] = [
            {f"{_USER_PREFIX}{key}": {"$eq": value}} for key, value in (filter or {}).items()
        ]
        flt = {"$and": [*conditions, acl_filter(principals)]}
        response = self._call(
            "query",
            lambda: self._index.query(
                vector=vector, top_k=k, namespace=self._ns(tenant), filter=flt, include_metadata=True
            ),
        )
        hits: list[VectorHit] = []
        for match in _get(response, "matches") or []:
            meta = dict(_get(match, "metadata") or {})
            user = {key[len(_USER_PREFIX) :]: v for key, v in meta.items() if key.startswith(_USER_PREFIX)}
            match_id = str(_get(match, "id"))
            record = VectorRecord(
                id=match_id.split("#", 1)[-1],
                tenant=tenant,
                doc_id=str(meta.get("doc_id", match_id.split("#", 1)[0])),
                doc_version=int(meta.get("doc_version", 0)),
                vector=[],
                text="",  # hydrated from gold by the search
                filename=meta.get("filename"),
                page_start=_int_or_none(meta.get("page_start")),
                page_end=_int_or_none(meta.get("page_end")),
                char_start=int(meta.get("char_start", 0)),
                char_end=int(meta.get("char_end", 0)),
                metadata=user,
            )
            hits.append(VectorHit(record=record, score=float(_get(match, "score"))))
        return hits

    def _list(self, tenant: str, prefix: str) -> list[str]:
        def run() -> list[str]:
            ids: list[str] = []
            for page in self._index.list(prefix=prefix, namespace=self._ns(tenant)):
                ids.extend(str(i) for i in (page if isinstance(page, list) else _ids_of(page)))
            return ids

        return self._call("list", run)

    def document_ids(self, tenant: str, doc_id: str) -> list[str]:
        return [i.split("#", 1)[1] for i in self._list(tenant, f"{doc_id}#")]

    def iter_ids(self, tenant: str | None = None) -> Iterator[StoredId]:
        tenants = [tenant] if tenant else self._tenants()
        for t in tenants:
            for full in self._list(t, ""):
                doc_id, _, chunk_id = full.partition("#")
                yield StoredId(id=chunk_id, tenant=t, doc_id=doc_id, doc_version=0)

    def _tenants(self) -> list[str]:
        stats = self._call("describe_index_stats", lambda: self._index.describe_index_stats())
        names = list((_get(stats, "namespaces") or {}).keys())
        return [self._tenant_of(n) for n in names if self._mine(n)]

    def _mine(self, namespace: str) -> bool:
        # Namespaces of other indexes carry their suffix: the base index (no suffix) must skip them.
        if self.namespace_suffix:
            return namespace.endswith(self.namespace_suffix)
        return _INDEX_SUFFIX.search(namespace) is None

    def _tenant_of(self, namespace: str) -> str:
        return namespace[: len(namespace) - len(self.namespace_suffix)] if self.namespace_suffix else namespace

    def count(self, tenant: str | None = None) -> int:
        stats = self._call("describe_index_stats", lambda: self._index.describe_index_stats())
        namespaces = _get(stats, "namespaces") or {}
        total = 0
        for name, info in namespaces.items():
            if (tenant is None and self._mine(name)) or (tenant is not None and name == self._ns(tenant)):
                total += int(_get(info, "vector_count") or _get(info, "vectorCount") or 0)
        return total

    def optimize(self) -> None:
        """Pinecone compacts by itself."""

    def drop(self) -> None:
        for tenant in self._tenants():
            ns = self._ns(tenant)
            self._call("delete", partial(self._index.delete, delete_all=True, namespace=ns))


def acl_filter(principals: Sequence[str]) -> dict[str, Any]:
    """The Pinecone filter of records a caller with ``principals`` may read (the only place it is spelled).

    ``$in`` on a list field matches a record when any of its values is in the given list, so this is
    the same test as Lance's ``array_has_any``, applied by Pinecone inside the k-NN. Records written
    before access control carry no acl and no document had one then: they are public (``$exists``)
    until ``doclake reindex --vectors-only`` rewrites them.
    """
    return {"$or": [{_ACL_KEY: {"$in": readers(principals)}}, {_ACL_KEY: {"$exists": False}}]}


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def _ids_of(page: Any) -> list[str]:
    vectors = _get(page, "vectors") or []
    return [str(_get(v, "id")) if not isinstance(v, str) else v for v in vectors]


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _batches(vectors: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split into requests under 1000 vectors and 2 MB (measured as the JSON the SDK sends, with margin)."""
    batch: list[dict[str, Any]] = []
    size = 0
    budget = int(MAX_REQUEST_BYTES * 0.9)
    for v in vectors:
        v_size = len(json.dumps(v)) + 2
        if batch and (len(batch) >= MAX_BATCH_VECTORS or size + v_size > budget):
            yield batch
            batch, size = [], 0
        batch.append(v)
        size += v_size
    if batch:
        yield batch
