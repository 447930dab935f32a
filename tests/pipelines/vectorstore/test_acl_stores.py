"""Access control inside the vector stores: the acl is a filter of the k-NN itself, on LanceDB and Pinecone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pytest

from pipelines.contracts.acl import PUBLIC
from pipelines.contracts.documents import VectorRecord
from pipelines.vectorstore.base import VectorStore
from pipelines.vectorstore.lance import LanceVectorStore, acl_predicate
from pipelines.vectorstore.pinecone import PineconeVectorStore, acl_filter
from tests.doubles.pinecone_double import PineconeDouble


@pytest.fixture(scope="module")
def pinecone_double() -> Iterator[PineconeDouble]:
    double = PineconeDouble().start()
    yield double
    double.stop()


@pytest.fixture(params=["lancedb", "pinecone"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    if request.param == "pinecone":
        double = request.getfixturevalue("pinecone_double")
        return PineconeVectorStore(api_key="k", host=double.url, namespace_suffix=f"-{tmp_path.name}")
    return LanceVectorStore(tmp_path / "vectors")


def _vec(*xs: float) -> list[float]:
    return [*xs, *([0.0] * (4 - len(xs)))]


def _rec(id: str, vec: list[float], acl: list[str] | None, **meta: str) -> VectorRecord:
    return VectorRecord(
        id=id, tenant="t1", doc_id=f"d{id}", doc_version=1, vector=vec, text=f"text {id}", metadata=meta, acl=acl
    )


def _ids(store: VectorStore, principals: list[str], k: int = 10, **flt: str) -> list[str]:
    return [h.record.id for h in store.query(_vec(1), k=k, tenant="t1", filter=flt or None, principals=principals)]


def test_only_readable_records_come_back(store: VectorStore) -> None:
    store.upsert(
        [
            _rec("pub", _vec(1, 0.3), None, team="ops"),
            _rec("sre", _vec(1, 0.1), ["group:sre"], team="ops"),
            _rec("ana", _vec(1, 0.2), ["user:ana", "group:hr"], team="hr"),
        ]
    )
    assert _ids(store, []) == ["pub"]
    assert _ids(store, ["group:sre"]) == ["sre", "pub"]
    assert _ids(store, ["group:hr"]) == ["ana", "pub"]
    assert _ids(store, ["user:bob", "group:sre", "user:ana"]) == ["sre", "ana", "pub"]
    assert _ids(store, ["group:sre", "group:hr"], team="hr") == ["ana"]
    # An acl change is an upsert of the same ids: the new acl replaces the old one.
    store.upsert([_rec("sre", _vec(1, 0.1), None, team="ops")])
    assert _ids(store, []) == ["sre", "pub"]


def test_top_k_is_filled_with_readable_records(store: VectorStore) -> None:
    """Twenty unreadable records nearer to the query than the readable ones must not leave top_k short."""
    near = [_rec(f"n{i}", _vec(1, 0.01 * i), ["group:secret"]) for i in range(20)]
    far = [_rec(f"f{i}", _vec(1, 1 + i), None) for i in range(3)]
    store.upsert(near + far)
    assert _ids(store, [], k=3) == ["f0", "f1", "f2"]
    assert _ids(store, ["group:secret"], k=3) == ["n0", "n1", "n2"]


def test_keyword_search_applies_the_acl_on_lance(tmp_path: Path) -> None:
    store = LanceVectorStore(tmp_path / "vectors")
    store.upsert([_rec("pub", _vec(1), None), _rec("sre", _vec(1), ["group:sre"])])
    ids = lambda who: sorted(h.record.id for h in store.keyword_query("text", k=5, tenant="t1", principals=who))  # noqa: E731
    assert ids([]) == ["pub"] and ids(["group:sre"]) == ["pub", "sre"]


def test_the_predicates_name_the_public_token() -> None:
    assert acl_predicate(["group:o'neil"]) == f"array_has_any(acl, ['{PUBLIC}', 'group:o''neil'])"
    assert acl_filter([]) == {"$or": [{"acl": {"$in": [PUBLIC]}}, {"acl": {"$exists": False}}]}


def _legacy_table(path: Path, rows: int) -> None:
    """A LanceDB table as doclake wrote it before access control: no acl column."""
    schema = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("tenant", pa.string(), nullable=False),
            pa.field("doc_id", pa.string(), nullable=False),
            pa.field("doc_version", pa.int64()),
            pa.field("vector", pa.list_(pa.float32(), 4)),
            pa.field("text", pa.string()),
            pa.field("filename", pa.string()),
            pa.field("page_start", pa.int32()),
            pa.field("page_end", pa.int32()),
            pa.field("char_start", pa.int64()),
            pa.field("char_end", pa.int64()),
            pa.field("metadata_json", pa.string()),
            pa.field("meta_tags", pa.list_(pa.string())),
        ]
    )
    data = [
        {"id": f"old{i}", "tenant": "t1", "doc_id": f"dold{i}", "doc_version": 1, "vector": _vec(1, 0.5 + i),
         "text": f"old text {i}", "metadata_json": "{}", "meta_tags": []}
        for i in range(rows)
    ]  # fmt: skip
    lancedb.connect(path).create_table("chunks", pa.Table.from_pylist(data, schema=schema))


def test_an_older_table_without_the_acl_column_is_searched_as_public(tmp_path: Path) -> None:
    _legacy_table(tmp_path / "vectors", 3)
    store = LanceVectorStore(tmp_path / "vectors")
    assert _ids(store, []) == ["old0", "old1", "old2"]
    assert len(store.keyword_query("old", k=5, tenant="t1")) == 3
    # The first write of a document with an acl gives the table the column; the old rows stay public.
    store.upsert([_rec("new", _vec(1), ["group:sre"])])
    assert _ids(store, []) == ["old0", "old1", "old2"]
    assert _ids(store, ["group:sre"]) == ["new", "old0", "old1", "old2"]
    # Another process that opened the table before the column existed sees it too.
    other = LanceVectorStore(tmp_path / "vectors")
    assert _ids(other, ["group:sre"], k=1) == ["new"]


def test_housekeeping_adds_the_acl_column_and_its_label_list_index(tmp_path: Path) -> None:
    _legacy_table(tmp_path / "vectors", 3)
    store = LanceVectorStore(tmp_path / "vectors")
    store.optimize()
    table = lancedb.connect(tmp_path / "vectors").open_table("chunks")
    acl = table.search().select(["id", "acl"]).to_arrow().to_pylist()
    assert {r["id"]: r["acl"] for r in acl} == {f"old{i}": [PUBLIC] for i in range(3)}
    assert table.schema.field("acl").nullable  # like a new table's, so upserts match the schema
    assert _ids(store, []) == ["old0", "old1", "old2"]


def test_an_indexed_table_answers_a_dominant_tenant_with_readable_rows_only(tmp_path: Path) -> None:
    """With the ANN index a tenant holding every row is postfiltered first; the acl stays in that filter, and
    the prefilter fallback fills top_k when the readable rows are rare."""
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = LanceVectorStore(tmp_path / "vectors", ann_index_min_rows=256)
    records = [
        VectorRecord(
            id=f"r{i}", tenant="t1", doc_id=f"d{i}", doc_version=1, vector=vectors[i].tolist(),
            acl=None if i % 50 == 0 else ["group:x"],
        )
        for i in range(300)
    ]  # fmt: skip
    store.upsert(records)
    assert store.ensure_ann_index()
    table = lancedb.connect(tmp_path / "vectors").open_table("chunks")
    assert any("acl" in i.columns and "label" in str(i.index_type).lower() for i in table.list_indices())
    public = [i for i in range(300) if i % 50 == 0]  # six readable rows among 300
    exact = sorted(public, key=lambda i: -float(vectors[i] @ vectors[1]))[:5]
    hits = store.query(vectors[1].tolist(), k=5, tenant="t1")
    assert [h.record.id for h in hits] == [f"r{i}" for i in exact]
    assert [h.record.id for h in store.query(vectors[1].tolist(), k=1, tenant="t1", principals=["group:x"])] == ["r1"]


def test_pinecone_records_written_before_access_control_are_public(pinecone_double: PineconeDouble) -> None:
    store = PineconeVectorStore(api_key="k", host=pinecone_double.url, namespace_suffix="-legacy")
    pinecone_double.namespaces["t1-legacy"] = {
        "dold#old": {"id": "dold#old", "values": _vec(1, 0.5), "metadata": {"doc_id": "dold", "doc_version": 1}}
    }
    store.upsert([_rec("new", _vec(1), ["group:sre"])])
    assert _ids(store, []) == ["old"]
    assert _ids(store, ["group:sre"]) == ["new", "old"]
    stored = pinecone_double.namespaces["t1-legacy"]["dnew#new"]["metadata"]
    assert stored["acl"] == ["group:sre"]
