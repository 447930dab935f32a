"""The ANN index's upkeep: new rows are searchable at once and folded into delta indexes, never lost."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.contracts.documents import VectorRecord
from pipelines.vectorstore import ann
from pipelines.vectorstore.ann import IndexShape, ann_params, plan_upkeep
from pipelines.vectorstore.lance import LanceVectorStore

DIM = 8


def test_new_rows_become_a_delta_not_a_rebuild() -> None:
    plan = plan_upkeep(IndexShape(rows_per_delta=[100_000], unindexed_rows=2_000, partitions=1))
    assert (plan.fold, plan.merge_deltas, plan.retrain) == (True, 0, False)
    assert not plan_upkeep(IndexShape(rows_per_delta=[100_000, 500], unindexed_rows=0, partitions=1)).fold


def test_deltas_past_the_limit_merge_with_each_other() -> None:
    shape = IndexShape(rows_per_delta=[100_000] + [1_000] * ann.MAX_DELTAS, unindexed_rows=10, partitions=1)
    plan = plan_upkeep(shape)
    assert plan.merge_deltas == ann.MAX_DELTAS and not plan.retrain


def test_the_base_is_rebuilt_once_deltas_hold_half_its_rows() -> None:
    assert not plan_upkeep(IndexShape(rows_per_delta=[100_000, 30_000], unindexed_rows=19_999, partitions=1)).retrain
    assert plan_upkeep(IndexShape(rows_per_delta=[100_000, 30_000], unindexed_rows=20_000, partitions=1)).retrain


def test_crossing_a_partition_boundary_does_not_rebuild() -> None:
    rows = ann.ROWS_PER_PARTITION
    plan = plan_upkeep(IndexShape(rows_per_delta=[rows, 1_000], unindexed_rows=5_000, partitions=1))
    assert plan.fold and not plan.retrain  # the rebuild waits for the deltas, then takes 2 partitions
    assert ann_params(2 * rows + 1).partitions == 3 and ann_params(10, k=50).ef == 100


def test_the_candidate_list_grows_with_the_table() -> None:
    assert ann_params(1_000).ef == ann_params(100_000).ef == ann.EF
    assert ann_params(1_000_000).ef == 202 and ann_params(4_000_000).ef == 405  # 64 * sqrt(rows / 100k)


def _records(vectors: np.ndarray, start: int, tenant: str = "t1") -> list[VectorRecord]:
    return [
        VectorRecord(id=f"r{i}", tenant=tenant, doc_id=f"d{i // 50}", doc_version=1, vector=v.tolist(), text=f"t{i}")
        for i, v in enumerate(vectors, start=start)
    ]


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[LanceVectorStore, np.ndarray]:
    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(1_400, DIM)).astype("float32")
    store = LanceVectorStore(tmp_path / "vectors", ann_index_min_rows=300)
    store.upsert(_records(vectors[:600], 0))
    store.optimize()
    shape = store.index_shape()
    assert shape is not None and shape.rows_per_delta == [600] and shape.unindexed_rows == 0
    return store, vectors


def _found(store: LanceVectorStore, vectors: np.ndarray, ids: range, tenant: str = "t1") -> bool:
    return all(store.query(vectors[i].tolist(), k=1, tenant=tenant)[0].record.id == f"r{i}" for i in ids)


def test_rows_are_searchable_before_and_after_folding(indexed: tuple[LanceVectorStore, np.ndarray]) -> None:
    store, vectors = indexed
    store.upsert(_records(vectors[600:650], 600))
    store.upsert(_records(vectors[650:700], 650))
    assert _found(store, vectors, range(600, 700, 7))  # unindexed fragments are searched flat
    store.optimize()
    shape = store.index_shape()
    assert shape is not None and shape.rows_per_delta == [600, 100] and shape.unindexed_rows == 0
    assert _found(store, vectors, range(0, 700, 13))
    ids = [s.id for s in store.iter_ids()]
    assert len(ids) == len(set(ids)) == store.count() == 700


def test_folds_merge_deltas_then_retrain_without_losing_a_row(indexed: tuple[LanceVectorStore, np.ndarray]) -> None:
    store, vectors = indexed
    start = 600
    shapes = []
    for batch in (40,) * (ann.MAX_DELTAS + 1) + (400,):  # five small folds, then one past half the base
        store.upsert(_records(vectors[start : start + batch], start))
        store.upsert(_records(vectors[start : start + 5], start))  # an update of rows just written
        start += batch
        store.optimize()
        shape = store.index_shape()
        assert shape is not None
        shapes.append(shape.rows_per_delta)
        assert sum(shape.rows_per_delta) + shape.unindexed_rows == start == store.count()
    assert max(len(s) for s in shapes) <= ann.MAX_DELTAS + 1  # the base and at most MAX_DELTAS deltas
    assert shapes[-1] == [start]  # rebuilt: one index over every row
    ids = [s.id for s in store.iter_ids()]
    assert len(ids) == len(set(ids)) == start
    assert _found(store, vectors, range(0, start, 17))


def test_filtered_search_never_crosses_tenants(indexed: tuple[LanceVectorStore, np.ndarray]) -> None:
    store, vectors = indexed
    # The other tenant's rows are the same vectors: the nearest row of all is always the wrong tenant's.
    store.upsert([r.model_copy(update={"id": f"x{r.id}", "tenant": "t2"}) for r in _records(vectors[:600], 0)])
    for _folded in (False, True):
        for i in range(0, 600, 37):
            hits = store.query(vectors[i].tolist(), k=10, tenant="t1")
            assert len(hits) == 10 and {h.record.tenant for h in hits} == {"t1"}
            assert hits[0].record.id == f"r{i}"
        store.optimize()
    assert store.count("t2") == 600


def test_a_dominant_tenant_still_gets_k_rows_when_its_candidates_run_short(tmp_path: Path) -> None:
    """The postfilter path (a tenant holding most rows) falls back to the prefilter, never returns fewer."""
    rng = np.random.default_rng(5)
    mine = rng.normal(size=(700, DIM)).astype("float32")
    store = LanceVectorStore(tmp_path / "vectors", ann_index_min_rows=300)
    store.upsert(_records(mine, 0))
    target = np.ones(DIM, dtype="float32")
    crowd = target + 0.01 * rng.normal(size=(500, DIM)).astype("float32")  # the other tenant, all near target
    store.upsert([r.model_copy(update={"id": f"x{r.id}"}) for r in _records(crowd, 0, tenant="t2")])
    store.optimize()
    assert store.index_shape() is not None and store._tenant_share(store._open(), "t1") > 0.5
    hits = store.query(target.tolist(), k=10, tenant="t1")
    assert len(hits) == 10 and {h.record.tenant for h in hits} == {"t1"}
    scores = mine @ target / (np.linalg.norm(mine, axis=1) * np.linalg.norm(target))
    assert hits[0].record.id == f"r{int(np.argmax(scores))}"
