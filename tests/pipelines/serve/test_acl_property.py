"""Property: whatever the documents, acls, edits and acl patches, no search ever returns a chunk outside the
caller's rights — dense, keyword, hybrid, rag/context, and as_of at every gold version of the history.

Each example is a tenant of its own in one lake (the steps and the model are the real ones; a fresh lake per
example would cost seconds of table creation), with tiny one-sentence documents.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.contracts.acl import KEEP, AclArg, readable
from pipelines.contracts.search import SearchQuery
from pipelines.runtime import Runtime
from pipelines.serve.rag import RagQuery, build_context
from pipelines.serve.search import search
from pipelines.stream.changes import patch_metadata
from tests.steps import apply_updates, process_one, register_one

PRINCIPALS = ["user:ana", "user:bob", "group:sre", "group:hr"]
TEXTS = [
    "Harbour cranes unload grain ships at dawn.",
    "The payroll run closes on the twenty-fifth.",
    "Rotate the vault key every ninety days.",
    "Lentil soup is served in the canteen on Mondays.",
    "The gateway fails over to the standby region.",
]
QUERY = "harbour cranes payroll vault key lentil soup gateway standby"
CALLERS = [[], ["user:ana"], ["group:sre"], ["user:bob", "group:hr"], PRINCIPALS]

acls = st.one_of(st.none(), st.lists(st.sampled_from(PRINCIPALS), min_size=1, max_size=3, unique=True).map(sorted))
documents = st.lists(st.tuples(st.sampled_from(range(len(TEXTS))), acls), min_size=1, max_size=3)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("acl"), st.integers(0, 2), acls),
        st.tuples(
            st.just("edit"), st.integers(0, 2), st.sampled_from(range(len(TEXTS))), st.one_of(st.just(KEEP), acls)
        ),
        st.tuples(st.just("meta"), st.integers(0, 2)),
    ),
    max_size=4,
)


def _upload(rt: Runtime, tenant: str, doc_id: str, text: str, acl: AclArg) -> None:
    result = register_one(rt, text.encode(), filename=f"{doc_id}.txt", tenant=tenant, doc_id=doc_id, acl=acl)
    if not result.duplicate:
        assert process_one(rt, tenant, doc_id, result.version).state == "done"


def _check(rt: Runtime, tenant: str, expected: dict[str, list[str] | None], as_of: int | None) -> None:
    for who in CALLERS:
        allowed = {d for d, acl in expected.items() if readable(acl, who)}
        modes = ["dense"] if as_of is not None else ["dense", "keyword", "hybrid"]
        for mode in modes:
            # Documents may share a text: near-duplicate collapse would rightly keep one of them, and the
            # exactness check below is about the acl filter, not about ranking.
            query = SearchQuery(
                query=QUERY,
                top_k=50,
                principals=who,
                mode=mode,  # type: ignore[arg-type]
                as_of=as_of,
                collapse_duplicates=False,
            )
            found = {h.doc_id for h in search(rt, query, tenant=tenant)}
            assert found <= allowed, (mode, as_of, who, found, expected)
            if mode == "dense":
                # Exact (flat) search with room for every chunk: the filter is not stricter than the rights.
                assert found == allowed, (as_of, who, found, expected)
        if as_of is None:
            context = build_context(rt, RagQuery(question=QUERY, max_tokens=512, principals=who), tenant=tenant)
            assert {c.doc_id for c in context.citations} <= allowed, (who, context.citations, expected)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(docs=documents, history=operations)
def test_no_result_is_ever_outside_the_callers_rights(
    runtime: Runtime, docs: list[tuple[int, list[str] | None]], history: list[tuple[Any, ...]]
) -> None:
    rt = runtime
    tenant = "p" + uuid.uuid4().hex[:12]
    gold = rt.index().gold
    expected: dict[str, list[str] | None] = {}
    snapshots: list[tuple[int, dict[str, list[str] | None]]] = []

    def snapshot() -> None:
        snapshots.append((rt.lake.snapshot(gold).version(), dict(expected)))

    for i, (text, acl) in enumerate(docs):
        _upload(rt, tenant, f"d{i}", TEXTS[text], acl)
        expected[f"d{i}"] = acl
    snapshot()
    for op in history:
        doc_id = f"d{op[1] % len(docs)}"
        if op[0] == "acl":
            patch_metadata(rt, tenant, doc_id, None, acl=op[2])
            apply_updates(rt, tenant=tenant)
            expected[doc_id] = op[2]
        elif op[0] == "edit":
            _upload(rt, tenant, doc_id, TEXTS[op[2]] + " Revised.", op[3])
            if op[3] is not KEEP:
                expected[doc_id] = op[3]
        else:
            patch_metadata(rt, tenant, doc_id, {"reviewed": True})
            apply_updates(rt, tenant=tenant)
        snapshot()
    _check(rt, tenant, expected, None)
    for version, then in snapshots:
        _check(rt, tenant, then, version)
