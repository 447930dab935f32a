"""The ANN index's parameters and its upkeep policy, as numbers measured in bench/search_scale.py.

Pure functions of the table's size and its index statistics, so that the policy is tested without
building indexes and the bench, housekeeping and search all use the same figures.

Measured on real-like embeddings (docs/benchmarks.md, "Search at scale"; pylance, no API): IVF_HNSW_SQ
with one partition and ef 64 gave recall@10 0.980 at 100k rows at p50 1.5 ms / p99 2.9 ms; IVF_PQ needed
64 probes and refine 10 for 0.954 at p99 7.4 ms. Two partitions cost recall at one probe (0.900) and
gained nothing at two. At 1M rows one graph needs a longer candidate list: ef 64 / 128 / 256 / 512 gave
0.872 / 0.950 / 0.969 / 0.978 at p99 2.0 / 2.4 / 3.0 / 5.9 ms, so ef grows with the square root of the
rows (64 at 100k, 202 at 1M). Folding 5,000 new rows into a delta index took 0.4-0.6 s at 100k and at 1M;
merging that delta into the base 21-22 s at 100k (a rebuild), so new rows go into deltas and the base is
only rebuilt when the deltas have grown large next to it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["AnnParams", "IndexShape", "UpkeepPlan", "ann_params", "plan_upkeep"]

INDEX_TYPE = "IVF_HNSW_SQ"
EF = 64
"""HNSW candidate list at ``EF_ROWS`` rows, growing with the square root of the rows; at least 2k."""
EF_ROWS = 100_000
ROWS_PER_PARTITION = 1_000_000
"""One HNSW graph up to this many rows: more partitions cost recall at the same probes."""
MAX_DELTAS = 4
"""Delta indexes kept before they are merged into one: each is searched on its own."""
RETRAIN_SHARE = 0.5
"""Rebuild the whole index once the deltas hold this share of the base index's rows."""


class AnnParams(BaseModel):
    """How an index over ``rows`` rows is built and searched."""

    partitions: int = Field(ge=1)
    nprobes: int = Field(ge=1)
    ef: int = Field(ge=1)


def partitions_for(rows: int) -> int:
    return max(1, -(-rows // ROWS_PER_PARTITION))


def ann_params(rows: int, *, k: int = 10, partitions: int | None = None) -> AnnParams:
    """Build and search parameters for a table of ``rows`` rows (or an index of ``partitions``).

    Every partition is probed: with as few partitions as these, skipping one loses the neighbours
    that sit across a boundary (measured: 2 partitions, 1 probe, recall 0.900).
    """
    p = partitions or partitions_for(rows)
    ef = round(EF * (max(rows, EF_ROWS) / EF_ROWS) ** 0.5)
    return AnnParams(partitions=p, nprobes=p, ef=max(ef, 2 * k))


class IndexShape(BaseModel):
    """What housekeeping reads of the ANN index: lance's ``index_stats`` in a few numbers."""

    rows_per_delta: list[int] = Field(description="Indexed rows of the base index, then of each delta index.")
    unindexed_rows: int = Field(ge=0)
    partitions: int = Field(ge=1)


class UpkeepPlan(BaseModel):
    fold: bool = Field(description="Index the unindexed rows as a new delta index.")
    merge_deltas: int = Field(
        default=0, ge=0, description="Merge this many newest delta indexes, with the new rows, into one."
    )
    retrain: bool = Field(default=False, description="Rebuild the whole index (new centroids and graph).")
    reason: str = ""


def plan_upkeep(shape: IndexShape) -> UpkeepPlan:
    """What one housekeeping pass does to the ANN index: work in proportion to the rows that arrived.

    New rows become a delta index (cost ∝ new rows). Deltas past ``MAX_DELTAS`` are merged with each
    other, never into the base (cost ∝ delta rows). The base is rebuilt, with the partition count
    its rows then want, only when the deltas hold ``RETRAIN_SHARE`` of its rows, so a rebuild of N
    rows comes at most once per N/2 new rows. (Rebuilding whenever the table crossed a partition
    boundary cost a 1M-row table a 557 s rebuild for its first 5,000 new rows.)
    """
    base, *deltas = shape.rows_per_delta or [0]
    delta_rows = sum(deltas) + shape.unindexed_rows
    total = base + delta_rows
    if base == 0 or delta_rows >= RETRAIN_SHARE * base:
        return UpkeepPlan(
            fold=False, retrain=True, reason=f"deltas hold {delta_rows} rows next to a base of {base} ({total} rows)"
        )
    fold = shape.unindexed_rows > 0
    count = len(deltas) + (1 if fold else 0)
    merge = len(deltas) if count > MAX_DELTAS else 0
    return UpkeepPlan(fold=fold, merge_deltas=merge, reason=f"{len(deltas)} deltas, {shape.unindexed_rows} new rows")
