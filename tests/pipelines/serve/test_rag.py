"""RAG context packing: the token budget holds, citations are numbered and exact, neighbours merge."""

from __future__ import annotations

import re

import pytest

from pipelines.lakehouse.chunks import doc_chunks
from pipelines.runtime import Runtime
from pipelines.serve.rag import Candidate, RagQuery, build_context, pack_context, token_counter
from tests.steps import process_one, register_one


def _words(text: str) -> int:
    return len(text.split())


def _cand(doc: str, ordinal: int, text: str, score: float, *, start: int, page: int | None = None) -> Candidate:
    return Candidate(
        chunk_id=f"{doc}-{ordinal}",
        doc_id=doc,
        version=1,
        ordinal=ordinal,
        text=text,
        char_start=start,
        char_end=start + len(text),
        page_start=page,
        page_end=page,
        filename=f"{doc}.pdf",
        score=score,
    )


def test_adjacent_chunks_of_one_document_merge_into_one_citation() -> None:
    a3 = _cand("a", 3, "alpha three", 0.9, start=100, page=2)
    a4 = _cand("a", 4, "alpha four", 0.8, start=113, page=3)
    b1 = _cand("b", 1, "beta one", 0.85, start=0)
    result = pack_context([a4, b1, a3], max_tokens=1000, count_tokens=_words)
    assert [c.n for c in result.citations] == [1, 2]
    first, second = result.citations
    assert (first.doc_id, first.chunk_ids, first.page_start, first.page_end) == ("a", ["a-3", "a-4"], 2, 3)
    assert second.doc_id == "b" and second.chunk_ids == ["b-1"] and second.page_start is None
    assert result.context == "[1] a.pdf, pp. 2-3\nalpha three\n\nalpha four\n\n[2] b.pdf\nbeta one"
    assert result.tokens == _words(result.context)
    assert result.context[first.context_start : first.context_end] == "alpha three\n\nalpha four"
    assert result.context[second.context_start : second.context_end] == "beta one"


def test_overlapping_windows_are_written_once() -> None:
    doc = "one two three four five six seven eight nine ten"
    w1 = _cand("a", 0, doc[0:23], 0.7, start=0)  # "one two three four five"
    w2 = _cand("a", 1, doc[14:38], 0.9, start=14)  # "four five six seven eight"
    result = pack_context([w1, w2], max_tokens=100, count_tokens=_words)
    (citation,) = result.citations
    assert citation.chunk_ids == ["a-0", "a-1"]
    assert result.context.split("\n", 1)[1] == doc[0:38]


def test_a_chunk_bridging_two_blocks_joins_them() -> None:
    parts = [_cand("a", i, f"part {i}", score, start=10 * i) for i, score in ((3, 0.9), (5, 0.8), (4, 0.1))]
    result = pack_context(parts, max_tokens=100, count_tokens=_words)
    (citation,) = result.citations
    assert citation.chunk_ids == ["a-3", "a-4", "a-5"] and citation.score == 0.9


def test_duplicate_text_is_kept_once_at_its_best_score() -> None:
    same = "the same paragraph of boilerplate"
    result = pack_context(
        [_cand("a", 0, same, 0.5, start=0), _cand("b", 7, same, 0.6, start=0)], max_tokens=100, count_tokens=_words
    )
    assert [c.doc_id for c in result.citations] == ["b"]


def test_budget_skips_what_does_not_fit_and_keeps_smaller_later_chunks() -> None:
    big = _cand("a", 0, " ".join(["word"] * 50), 0.9, start=0)
    small = _cand("b", 0, "short answer here", 0.5, start=0)
    result = pack_context([big, small], max_tokens=10, count_tokens=_words)
    assert [c.doc_id for c in result.citations] == ["b"] and result.tokens <= 10
    assert pack_context([big], max_tokens=10, count_tokens=_words).citations == []


@pytest.fixture()
def indexed(runtime: Runtime) -> Runtime:
    sections = [
        ("Backups", "Nightly backups run at 02:00 and are kept for thirty days in the cold bucket."),
        ("Restores", "To restore a backup, open a ticket with the storage team and name the snapshot."),
        ("Certificates", "TLS certificates renew automatically fourteen days before they expire."),
        ("Paging", "The on-call engineer acknowledges every page within five minutes."),
    ]
    text = "\n\n".join(f"## {title}\n\n{body}" for title, body in sections)
    for doc_id, body in (("ops", text), ("faq", "# FAQ\n\nBackups are kept for thirty days.")):
        result = register_one(runtime, body.encode(), filename=f"{doc_id}.md", doc_id=doc_id)
        assert process_one(runtime, "default", doc_id, result.version).state == "done"
    return runtime


def test_build_context_respects_the_tokenizer_budget_and_cites_gold_chunks(indexed: Runtime) -> None:
    count = token_counter(indexed.tokenizer())
    gold = {r["chunk_id"]: r for doc in ("ops", "faq") for r in doc_chunks(indexed.lake, "default", doc).to_pylist()}
    previous = 0
    for budget in (16, 40, 80, 400):
        result = build_context(indexed, RagQuery(question="how long are backups kept?", max_tokens=budget))
        assert result.tokens == count(result.context) <= budget
        assert len(result.citations) >= previous  # a larger budget never cites less
        previous = len(result.citations)
        headers = re.findall(r"^\[(\d+)\] (\S+)", result.context, flags=re.M)
        assert [int(n) for n, _ in headers] == [c.n for c in result.citations] == list(range(1, previous + 1))
        for citation, (_, name) in zip(result.citations, headers, strict=True):
            rows = [gold[i] for i in citation.chunk_ids]
            assert name.rstrip(",") == citation.filename == f"{citation.doc_id}.md"
            assert all(r["doc_id"] == citation.doc_id for r in rows)
            ordinals = [r["ordinal"] for r in rows]
            assert ordinals == list(range(ordinals[0], ordinals[0] + len(ordinals)))  # merged only if adjacent
            assert all(r["text"] in result.context for r in rows)
    assert previous >= 2
    top = build_context(indexed, RagQuery(question="how long are backups kept?", max_tokens=400)).citations
    assert {c.doc_id for c in top} == {"ops", "faq"}
    assert "thirty days" in build_context(indexed, RagQuery(question="backup retention", max_tokens=60)).context


def test_build_context_filters_and_sees_deletes(indexed: Runtime) -> None:
    from pipelines.ingest.lifecycle import delete_document

    delete_document(indexed, "default", "faq")
    result = build_context(indexed, RagQuery(question="how long are backups kept?", max_tokens=400))
    assert result.citations and "faq" not in {c.doc_id for c in result.citations}
    assert build_context(indexed, RagQuery(question="backups", filter={"team": "none"})).citations == []
