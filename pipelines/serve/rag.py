"""Token-budgeted RAG context: the best chunks for a question, packed with numbered citations.

The packer works in four moves:

1. **Candidates**: search's top ``candidates`` chunks for the question (tenant + filter), in the
   search API's default mode unless ``mode`` names one (``pipelines.serve.search``: hybrid on LanceDB).
2. **Hydrate from gold**: the chunks' rows are re-read from gold.chunks, which is the truth (the
   store is a mirror and may briefly hold a vector gold no longer has); gold also gives each chunk's
   ``ordinal`` and exact char span, which merging needs.
3. **Dedup**: the same text twice (a document uploaded under two ids, a boilerplate footer) is kept
   once, at its best score.
4. **Greedy packing**: in score order, a chunk is added when the whole rendered context still fits the
   budget; chunks of one document whose ordinals are consecutive are merged into one block (their
   overlap, when a long element was windowed, is written once), and every block is one citation.

Tokens are counted with the embedding model's own tokenizer (``pipelines.embed.load_tokenizer``),
without special tokens, over the exact string returned — so ``count(context) <= max_tokens`` holds
for that tokenizer. An LLM's tokenizer counts differently (WordPiece vs BPE, typically within ±20 %
on English prose); callers pass a budget with headroom, or their own ``count_tokens``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipelines.contracts.acl import PrincipalList, readable
from pipelines.contracts.ids import DEFAULT_TENANT, ELEMENT_SEPARATOR, MetadataValue, sha256_hex
from pipelines.contracts.search import SearchMode, SearchQuery
from pipelines.lakehouse.lake import sql_quote
from pipelines.lakehouse.schemas import TableSpec
from pipelines.observability.metrics import SEARCH_LATENCY
from pipelines.runtime import Runtime
from pipelines.serve.search import search

__all__ = [
    "Candidate",
    "Citation",
    "RagContext",
    "RagQuery",
    "TokenCounter",
    "build_context",
    "pack_context",
    "token_counter",
]

TokenCounter = Callable[[str], int]


class RagQuery(BaseModel):
    question: str = Field(min_length=1, max_length=4096, description="The question the context must help answer.")
    max_tokens: int = Field(
        default=1024,
        ge=16,
        le=32_768,
        description="Token budget of the whole context string (citation headers included), "
        "counted with the embedding model's tokenizer.",
    )
    filter: dict[str, MetadataValue] = Field(
        default_factory=dict, description="Metadata keys that must match exactly (all of them)."
    )
    candidates: int = Field(
        default=30, ge=1, le=100, description="How many search hits are considered for packing, best first."
    )
    principals: PrincipalList = Field(
        default_factory=list,
        description=(
            "The end user's identities, passed by the application: only documents without an acl, or whose acl"
            " names one of them, are packed (as in /v1/search)."
        ),
    )
    mode: SearchMode | None = Field(
        default=None,
        description="Search mode of the candidates: dense, keyword or hybrid (default: the search API's default).",
    )

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"question": "how do I find large files?", "max_tokens": 512, "filter": {}}]}
    )


class Citation(BaseModel):
    n: int = Field(description="The number the context uses for this source: [n].")
    doc_id: str
    version: int
    filename: str | None
    page_start: int | None
    page_end: int | None
    chunk_ids: list[str] = Field(description="Gold chunks merged into this block, in document order.")
    score: float = Field(description="Best search score among the block's chunks (cosine, BM25 or fused).")
    context_start: int = Field(description="Where the block's text (after its header line) starts in ``context``.")
    context_end: int = Field(description="Where it ends: ``context[context_start:context_end]`` is the text.")


class RagContext(BaseModel):
    context: str = Field(description="Numbered blocks, '[n] source' header then text, separated by blank lines.")
    citations: list[Citation]
    tokens: int = Field(description="Tokens of ``context`` as counted for the budget.")
    max_tokens: int


class Candidate(BaseModel):
    chunk_id: str
    doc_id: str
    version: int
    ordinal: int
    text: str
    char_start: int
    char_end: int
    page_start: int | None
    page_end: int | None
    filename: str | None
    score: float


class _Block:
    """Consecutive chunks of one document, rendered as one citation."""

    def __init__(self, first: Candidate) -> None:
        self.parts: list[Candidate] = [first]

    @property
    def doc_id(self) -> str:
        return self.parts[0].doc_id

    @property
    def score(self) -> float:
        return max(p.score for p in self.parts)

    def touches(self, c: Candidate) -> bool:
        return (
            c.doc_id == self.doc_id
            and c.version == self.parts[0].version
            and (c.ordinal == self.parts[0].ordinal - 1 or c.ordinal == self.parts[-1].ordinal + 1)
        )

    def with_part(self, c: Candidate) -> _Block:
        block = _Block(c)
        block.parts = sorted([*self.parts, c], key=lambda p: p.ordinal)
        return block

    def text(self) -> str:
        out = self.parts[0].text
        end = self.parts[0].char_end
        for p in self.parts[1:]:
            # A chunk's text is text[char_start:char_end], except a table continuation chunk, which
            # starts with its header row: the block already shows that header, so only the span is added.
            span = p.text[max(0, len(p.text) - (p.char_end - p.char_start)) :]
            if p.char_start < end:
                # Windows of one long element overlap, so the overlap is written once.
                out += span[end - p.char_start :]
            elif p.char_start - end == 1:
                out += "\n" + span  # the next rows of one table
            else:
                out += ELEMENT_SEPARATOR + span
            end = max(end, p.char_end)
        return out

    def pages(self) -> tuple[int | None, int | None]:
        starts = [p.page_start for p in self.parts if p.page_start is not None]
        ends = [p.page_end for p in self.parts if p.page_end is not None]
        return (min(starts) if starts else None, max(ends) if ends else None)

    def header(self, n: int) -> str:
        name = self.parts[0].filename or self.doc_id
        start, end = self.pages()
        if start is None:
            return f"[{n}] {name}"
        return f"[{n}] {name}, p. {start}" if start == end or end is None else f"[{n}] {name}, pp. {start}-{end}"


def _render(blocks: list[_Block]) -> str:
    return "\n\n".join(f"{b.header(n)}\n{b.text()}" for n, b in enumerate(blocks, 1))


def _ordered(blocks: list[_Block]) -> list[_Block]:
    return sorted(blocks, key=lambda b: -b.score)


def pack_context(candidates: list[Candidate], *, max_tokens: int, count_tokens: TokenCounter) -> RagContext:
    """Pack scored candidates into at most ``max_tokens`` tokens (see the module docstring).

    Candidates are considered best first; one that does not fit is skipped and smaller ones after it
    may still fit. Blocks are numbered in order of their best score.
    """
    blocks: list[_Block] = []
    seen_text: set[str] = set()
    context, tokens = "", 0
    for c in sorted(candidates, key=lambda c: -c.score):
        digest = sha256_hex(c.text.strip())
        if digest in seen_text:
            continue
        joined = next((i for i, b in enumerate(blocks) if b.touches(c)), None)
        trial = list(blocks)
        if joined is None:
            trial.append(_Block(c))
        else:
            trial[joined] = trial[joined].with_part(c)
            # A chunk may bridge two blocks of the same document (ordinals 3 and 5, then 4 arrives).
            other = next((i for i, b in enumerate(trial) if i != joined and b.touches(c)), None)
            if other is not None:
                merged = trial[joined]
                for p in trial[other].parts:
                    merged = merged.with_part(p)
                trial[joined] = merged
                del trial[other]
        trial = _ordered(trial)
        rendered = _render(trial)
        n = count_tokens(rendered)
        if n > max_tokens:
            continue
        blocks, context, tokens = trial, rendered, n
        seen_text.add(digest)
    citations = []
    offset = 0
    for n, b in enumerate(blocks, 1):
        start, end = b.pages()
        text_start = offset + len(b.header(n)) + 1
        text_end = text_start + len(b.text())
        offset = text_end + 2  # the blank line between blocks
        citations.append(
            Citation(
                n=n,
                doc_id=b.doc_id,
                version=b.parts[0].version,
                filename=b.parts[0].filename,
                page_start=start,
                page_end=end,
                chunk_ids=[p.chunk_id for p in b.parts],
                score=round(b.score, 6),
                context_start=text_start,
                context_end=text_end,
            )
        )
    return RagContext(context=context, citations=citations, tokens=tokens, max_tokens=max_tokens)


def token_counter(tokenizer: Any) -> TokenCounter:
    """Count tokens of a string with a Hugging Face tokenizer, special tokens excluded."""

    def count(text: str) -> int:
        if not text:
            return 0
        ids: list[int] = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        return len(ids)

    return count


def _hydrate(
    rt: Runtime, gold: TableSpec, tenant: str, scores: dict[str, float], principals: list[str]
) -> list[Candidate]:
    if not scores:
        return []
    ids = ", ".join(sql_quote(i) for i in scores)
    columns = ["chunk_id", "doc_id", "doc_version", "ordinal", "text", "char_start", "char_end"]
    columns += ["page_start", "page_end", "filename", "acl"]
    rows = rt.lake.read(gold, f"tenant = {sql_quote(tenant)} AND chunk_id IN ({ids})", columns=columns)
    return [
        Candidate(
            chunk_id=r["chunk_id"],
            doc_id=r["doc_id"],
            version=r["doc_version"],
            ordinal=r["ordinal"] or 0,
            text=r["text"] or "",
            char_start=r["char_start"] or 0,
            char_end=r["char_end"] or 0,
            page_start=r["page_start"],
            page_end=r["page_end"],
            filename=r["filename"],
            score=scores[r["chunk_id"]],
        )
        for r in rows.to_pylist()
        # Gold is the truth: a chunk whose acl changed a moment ago, before the store was mirrored, stays out.
        if r["text"] and readable(r["acl"], principals)
    ]


def build_context(
    rt: Runtime,
    query: RagQuery,
    *,
    tenant: str = DEFAULT_TENANT,
    count_tokens: TokenCounter | None = None,
) -> RagContext:
    """The best chunks for ``query.question`` packed into ``query.max_tokens`` tokens, with citations.

    Args:
        rt: the process's services.
        query: question, budget, metadata filter, number of candidates, the caller's principals.
        tenant: whose documents are searched.
        count_tokens: how to count tokens; default the embedding model's tokenizer.
    """
    started = time.perf_counter()
    ask = SearchQuery(
        query=query.question,
        top_k=query.candidates,
        filter=query.filter,
        mode=query.mode,
        principals=query.principals,
    )
    gold = rt.index().gold  # the chunks the search below reads: the active index's gold table
    hits = search(rt, ask, tenant=tenant)
    candidates = _hydrate(rt, gold, tenant, {h.chunk_id: h.score for h in hits}, query.principals)
    result = pack_context(
        candidates, max_tokens=query.max_tokens, count_tokens=count_tokens or token_counter(rt.tokenizer())
    )
    SEARCH_LATENCY.labels(kind="rag_context").observe(time.perf_counter() - started)
    return result
