"""Contract tests of the vector store protocol, run against every implementation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.contracts.documents import VectorRecord
from pipelines.vectorstore.base import VectorStore
from pipelines.vectorstore.lance import LanceVectorStore
from pipelines.vectorstore.pinecone import PineconeVectorStore
from tests.doubles.pinecone_double import PineconeDouble


@pytest.fixture(scope="module")
def pinecone_double() -> Iterator[PineconeDouble]:
    double = PineconeDouble().start()
    yield double
    double.stop()


def _pinecone(double: PineconeDouble, path: Path) -> VectorStore:
    # A fresh namespace suffix per test keeps tests apart on the one shared double.
    return PineconeVectorStore(api_key="test-key", host=double.url, namespace_suffix=f"-{path.name}")


IMPLEMENTATIONS = ["lancedb", "pinecone"]


def _vec(*xs: float) -> list[float]:
    return [*xs, *([0.0] * (4 - len(xs)))]


def _rec(id: str, doc: str, vec: list[float], tenant: str = "t1", **meta: str | int | bool) -> VectorRecord:
    return VectorRecord(id=id, tenant=tenant, doc_id=doc, doc_version=1, vector=vec, text=f"text {id}", metadata=meta)


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> VectorStore:
    if request.param == "pinecone":
        return _pinecone(request.getfixturevalue("pinecone_double"), tmp_path)
    return LanceVectorStore(tmp_path / "vectors")


def test_empty_store_answers_empty(store: VectorStore) -> None:
    assert store.query(_vec(1), k=3, tenant="t1") == []
    assert store.count() == 0
    store.delete_document("t1", "nothing")


def test_upsert_query_ranks_by_cosine(store: VectorStore) -> None:
    store.upsert([_rec("a", "d1", _vec(1, 0)), _rec("b", "d1", _vec(0.7, 0.7)), _rec("c", "d2", _vec(0, 1))])
    hits = store.query(_vec(1, 0.1), k=3, tenant="t1")
    assert [h.record.id for h in hits] == ["a", "b", "c"]
    assert hits[0].score > hits[1].score > hits[2].score
    if isinstance(store, LanceVectorStore):
        assert hits[0].record.text == "text a"


def test_upsert_replaces_by_id(store: VectorStore) -> None:
    store.upsert([_rec("a", "d1", _vec(1, 0))])
    store.upsert([_rec("a", "d1", _vec(0, 1))])
    assert store.count() == 1
    assert store.query(_vec(0, 1), k=1, tenant="t1")[0].score == pytest.approx(1.0, abs=1e-5)


def test_tenants_are_isolated(store: VectorStore) -> None:
    store.upsert([_rec("a", "d1", _vec(1), tenant="t1"), _rec("b", "d1", _vec(1), tenant="t2")])
    assert [h.record.id for h in store.query(_vec(1), k=5, tenant="t2")] == ["b"]
    store.delete(["a"], tenant="t2", doc_id="d1")  # wrong tenant: must not delete t1's vector
    assert store.count("t1") == 1


def test_metadata_filter_is_exact_and_conjunctive(store: VectorStore) -> None:
    store.upsert(
        [
            _rec("a", "d1", _vec(1), team="ops", year=2024),
            _rec("b", "d2", _vec(1), team="ops", year=2025),
            _rec("c", "d3", _vec(1), team="opsx", year=2024),
            _rec("d", "d4", _vec(1), team="ops", year=2024, draft=True),
        ]
    )
    ids = lambda f: sorted(h.record.id for h in store.query(_vec(1), k=10, tenant="t1", filter=f))  # noqa: E731
    assert ids({"team": "ops"}) == ["a", "b", "d"]
    assert ids({"team": "ops", "year": 2024}) == ["a", "d"]
    assert ids({"year": "2024"}) == []  # a string is not the number
    assert ids({"draft": True}) == ["d"]
    assert ids({"team": "o'brien"}) == []  # quotes are escaped, not injected


def test_delete_ids_and_documents(store: VectorStore) -> None:
    store.upsert([_rec("a", "d1", _vec(1)), _rec("b", "d1", _vec(1)), _rec("c", "d2", _vec(1))])
    assert sorted(store.document_ids("t1", "d1")) == ["a", "b"]
    store.delete(["a"], tenant="t1", doc_id="d1")
    assert sorted(store.document_ids("t1", "d1")) == ["b"]
    store.delete_document("t1", "d1")
    assert [s.id for s in store.iter_ids("t1")] == ["c"]


def test_another_process_sees_writes_without_reopening(tmp_path: Path) -> None:
    reader = LanceVectorStore(tmp_path / "vectors")
    assert reader.count() == 0
    writer = textwrap.dedent(
        f"""
        from pipelines.contracts.documents import VectorRecord
        from pipelines.vectorstore.lance import LanceVectorStore
        s = LanceVectorStore({str(tmp_path / "vectors")!r})
        s.upsert([VectorRecord(id="x", tenant="t1", doc_id="d", doc_version=1, vector=[1.0, 0, 0, 0])])
        """
    )
    subprocess.run([sys.executable, "-c", writer], check=True, timeout=120)
    assert [h.record.id for h in reader.query(_vec(1), k=1, tenant="t1")] == ["x"]
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from pipelines.vectorstore.lance import LanceVectorStore; "
            f"LanceVectorStore({str(tmp_path / 'vectors')!r}).delete_document('t1', 'd')",
        ],
        check=True,
        timeout=120,
    )
    assert reader.query(_vec(1), k=1, tenant="t1") == []


def test_optimize_keeps_every_vector(store: VectorStore) -> None:
    for i in range(5):
        store.upsert([_rec(f"v{i}", "d1", _vec(1, i))])
    store.optimize()
    assert store.count() == 5
    assert store.query(_vec(1, 4), k=1, tenant="t1")[0].record.id == "v4"


def _text_rec(id: str, text: str, tenant: str = "t1", **meta: str | int | bool) -> VectorRecord:
    return VectorRecord(id=id, tenant=tenant, doc_id=f"d-{id}", doc_version=1, vector=_vec(1), text=text, metadata=meta)


def test_keyword_query_ranks_by_bm25_with_tenant_and_filter(tmp_path: Path) -> None:
    store = LanceVectorStore(tmp_path / "vectors")
    assert store.keyword_query("anything", k=3, tenant="t1") == []
    store.upsert([_text_rec("a", "vitamin D and hip fractures in older adults", team="bone")])
    # written after the full-text index was built: still found (unindexed fragments are scanned)
    store.upsert(
        [
            _text_rec("b", "vitamin D, vitamin D everywhere: vitamin D supplements", team="diet"),
            _text_rec("c", "celery workers and the broker"),
            _text_rec("x", "vitamin D for another tenant", tenant="t2"),
        ]
    )
    hits = store.keyword_query("vitamin D", k=5, tenant="t1")
    assert [h.record.id for h in hits] == ["b", "a"]  # term frequency wins; other tenant never seen
    assert hits[0].score > hits[1].score > 0 and hits[1].record.text.startswith("vitamin D and hip")
    assert [h.record.id for h in store.keyword_query("vitamin", k=5, tenant="t1", filter={"team": "bone"})] == ["a"]
    assert store.keyword_query('fractures" AND (x:', k=5, tenant="t1")[0].record.id == "a"  # no query syntax
    store.upsert([_text_rec("a", "nothing about bones any more", team="bone")])
    store.delete_document("t1", "d-b")
    store.optimize()  # folds the new rows into the index
    assert store.keyword_query("vitamin", k=5, tenant="t1") == []


def test_pinecone_refuses_keyword_search(pinecone_double: PineconeDouble, tmp_path: Path) -> None:
    from pipelines.errors import InvalidInput, SearchModeUnsupported

    store = _pinecone(pinecone_double, tmp_path)
    with pytest.raises(SearchModeUnsupported) as info:
        store.keyword_query("vitamin", k=3, tenant="t1")
    assert isinstance(info.value, InvalidInput)  # → 422 problem response at the API


def test_ann_index_is_built_past_the_threshold_only(tmp_path: Path) -> None:
    import numpy as np

    store = LanceVectorStore(tmp_path / "vectors", ann_index_min_rows=600)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(700, 4)).astype("float32")
    records = [
        VectorRecord(id=f"r{i}", tenant="t1", doc_id="d", doc_version=1, vector=v.tolist(), text="t")
        for i, v in enumerate(vectors)
    ]
    store.upsert(records[:500])
    store.optimize()
    assert not store.ensure_ann_index()  # 500 < 600: flat search stays exact
    store.upsert(records[500:])
    store.optimize()
    assert store.ensure_ann_index()
    assert store.query(vectors[42].tolist(), k=1, tenant="t1")[0].record.id == "r42"


def test_optimize_builds_the_ann_index_on_compacted_fragments(tmp_path: Path) -> None:
    import lancedb
    import numpy as np

    store = LanceVectorStore(tmp_path / "vectors", ann_index_min_rows=600)
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(800, 8)).astype("float32")
    for start in range(0, 800, 100):  # eight writes, eight fragments
        store.upsert(
            [
                VectorRecord(id=f"r{i}", tenant="t1", doc_id=f"d{i // 100}", doc_version=1, vector=v.tolist(), text="t")
                for i, v in enumerate(vectors[start : start + 100], start=start)
            ]
        )
    # The store's table read through LanceDB's own API, seeing every commit the store makes.
    table = lancedb.connect(store.path, read_consistency_interval=timedelta(0)).open_table(store.table_name)
    assert table.stats()["fragment_stats"]["num_fragments"] == 8
    store.optimize()
    stats = table.stats()
    assert stats["fragment_stats"]["num_fragments"] == 1 and stats["num_rows"] == 800
    [vector_index] = [i for i in table.list_indices() if "vector" in i.columns]
    index_stats = table.index_stats(vector_index.name)
    assert index_stats is not None and (index_stats.num_indexed_rows, index_stats.num_unindexed_rows) == (800, 0)
    assert store.query(vectors[123].tolist(), k=1, tenant="t1")[0].record.id == "r123"
    # The first table version holding the vector index already had one fragment: the index was
    # built on compacted data, not remapped by a compaction after it (see LanceVectorStore.optimize).
    first = None
    for version in table.list_versions():
        table.checkout(version["version"])
        if any("vector" in i.columns for i in table.list_indices()):
            first = version
            break
    table.checkout_latest()
    assert first is not None and first["metadata"]["total_fragments"] == "1"
