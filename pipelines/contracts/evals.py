"""Golden sets and their scores: what ``doclake eval`` reads (BEIR qrels + queries) and what it records."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from pipelines.contracts.ids import sha256_hex
from pipelines.contracts.search import SearchMode
from pipelines.errors import InvalidEvalSet

__all__ = ["EVAL_SET_NAME", "EvalFigures", "EvalResult", "EvalSet", "EvalSetSummary", "check_eval_set_name"]

EVAL_SET_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(EVAL_SET_NAME)
# The longest query search accepts (SearchQuery.query).
_MAX_QUERY_CHARS = 4096
_EXAMPLES = 5


def check_eval_set_name(name: str) -> str:
    """``name`` if it can name an eval set (letters, digits, ``_ . -``; at most 64 characters).

    Raises:
        InvalidEvalSet: any other name.
    """
    if not _NAME.match(name):
        raise InvalidEvalSet(f"eval set name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
    return name


def _some(ids: list[str]) -> str:
    shown = ", ".join(ids[:_EXAMPLES])
    return shown + (f" (+{len(ids) - _EXAMPLES} more)" if len(ids) > _EXAMPLES else "")


class EvalSet(BaseModel):
    """Queries with graded relevant documents (BEIR's qrels): relevance > 0 marks a relevant document."""

    name: str = Field(pattern=EVAL_SET_NAME, description="Name of the set (results are recorded under it).")
    queries: dict[str, str] = Field(description="Query id -> text, for every judged query.")
    qrels: dict[str, dict[str, int]] = Field(description="Query id -> document id -> relevance.")

    @classmethod
    def of(cls, name: str, queries: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]]) -> EvalSet:
        """A checked set: the judged queries of ``queries`` (BEIR query files hold every split's).

        Raises:
            InvalidEvalSet: a bad name, no judgements, no relevant document at all, judgements of a
                query that ``queries`` lacks, or an empty or too long query text.
        """
        check_eval_set_name(name)
        if not qrels or not any(qrels.values()):
            raise InvalidEvalSet(f"eval set {name!r} has no judgements: nothing to evaluate")
        orphans = sorted(q for q in qrels if q not in queries)
        if orphans:
            raise InvalidEvalSet(
                f"eval set {name!r}: qrels reference queries the queries do not have: {_some(orphans)}"
            )
        if not any(r > 0 for rel in qrels.values() for r in rel.values()):
            raise InvalidEvalSet(f"eval set {name!r}: no judgement marks a relevant document (relevance > 0)")
        judged = {q: queries[q] for q in sorted(qrels)}
        blank = [q for q, text in judged.items() if not text.strip()]
        if blank:
            raise InvalidEvalSet(f"eval set {name!r}: queries without text: {_some(blank)}")
        long = [q for q, text in judged.items() if len(text) > _MAX_QUERY_CHARS]
        if long:
            raise InvalidEvalSet(f"eval set {name!r}: queries over {_MAX_QUERY_CHARS} characters: {_some(long)}")
        return cls(name=name, queries=judged, qrels={q: dict(sorted(qrels[q].items())) for q in judged})

    @property
    def judgements(self) -> int:
        return sum(len(rel) for rel in self.qrels.values())

    @property
    def sha256(self) -> str:
        """Hash of the content (queries and judgements, not the name): results of different content never mix."""
        return sha256_hex(json.dumps([self.queries, self.qrels], sort_keys=True, separators=(",", ":")))


class EvalSetSummary(BaseModel):
    """One stored eval set of a tenant, without its rows."""

    name: str
    queries: int = Field(description="Judged queries.")
    judgements: int = Field(description="(query, document) relevance judgements.")
    set_sha256: str = Field(description="Hash of the set's content.")
    imported_at: datetime | None


class EvalFigures(BaseModel):
    """nDCG@10 and Recall@10 of one index on one eval set, as the API shows them."""

    model_config = {"protected_namespaces": ()}

    eval_set: str = Field(description="Name of the eval set.")
    set_sha256: str = Field(description="Hash of the set's content when it was evaluated.")
    index_id: str = Field(description="The index whose gold and vectors answered.")
    gold_version: int = Field(description="Delta version of the index's gold table the queries ran against.")
    snapshot: Literal["live", "as_of"] = Field(
        description="live: the vector store as it is; as_of: exact search over gold at gold_version (time travel)."
    )
    as_of: str | None = Field(default=None, description="The as_of asked for (a version or an ISO time).")
    mode: SearchMode = Field(description="Search mode of the queries.")
    top_k: int = Field(description="Chunks asked per query before they collapse to documents.")
    queries: int = Field(description="Queries evaluated.")
    ndcg_at_10: float = Field(description="Mean nDCG@10 over the queries (documents ranked by their best chunk).")
    recall_at_10: float = Field(description="Mean share of each query's relevant documents in its top 10.")
    duration_s: float = Field(description="Seconds the queries took.")
    evaluated_at: datetime


class EvalResult(EvalFigures):
    """A row of meta.eval_results: the figures and whose set they were measured on."""

    tenant: str
