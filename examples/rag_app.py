"""A small RAG application over doclake: retrieve a cited context, then answer from it.

    doclake up &                                   # the service
    python examples/rag_app.py --ingest ../shared/corpus/md "How do I install Readability?"

Retrieval is doclake's ``rag_context`` (best chunks, packed into a token budget, numbered citations).
Generation is a pluggable callable ``(question, context) -> answer``: plug an LLM call in there. The
default, :func:`extractive_answer`, needs no model: it quotes the context sentences that share the
most words with the question and cites them — enough to show the loop end to end.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel

from app.client import DoclakeClient
from app.schemas import Citation, RagContext

__all__ = ["Answer", "AnswerFn", "ask", "extractive_answer", "main"]

AnswerFn = Callable[[str, RagContext], str]
"""Turns a question and its cited context into an answer (an LLM prompt goes here)."""

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "you",
    ]
)


class Answer(BaseModel):
    question: str
    answer: str
    citations: list[Citation]
    context: str


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def extractive_answer(question: str, context: RagContext, *, sentences: int = 2) -> str:
    """The context sentences sharing the most words with the question, each followed by its [n]."""
    wanted = _terms(question)
    scored: list[tuple[int, int, str]] = []
    for citation in context.citations:
        block = context.context[citation.context_start : citation.context_end]
        for order, sentence in enumerate(re.split(r"(?<=[.!?:])\s+|\n+", block)):
            overlap = len(wanted & _terms(sentence))
            if overlap and sentence.strip():
                scored.append((-overlap, citation.n * 10_000 + order, f"{sentence.strip()} [{citation.n}]"))
    if not scored:
        return "The documents do not say."
    return " ".join(text for _, _, text in sorted(scored)[:sentences])


def ask(
    client: DoclakeClient,
    question: str,
    *,
    answer_fn: AnswerFn = extractive_answer,
    max_tokens: int = 512,
) -> Answer:
    """Retrieve a cited context for ``question`` and answer from it; only the cited sources are returned."""
    context = client.rag_context(question, max_tokens=max_tokens)
    text = answer_fn(question, context)
    used = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
    return Answer(
        question=question,
        answer=text,
        citations=[c for c in context.citations if c.n in used],
        context=context.context,
    )


def main(argv: Sequence[str] | None = None, *, client: DoclakeClient | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("question")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="The doclake API.")
    parser.add_argument("--ingest", type=Path, nargs="*", default=[], help="Files or folders to upload first.")
    parser.add_argument("--max-tokens", type=int, default=512)
    args = parser.parse_args(argv)
    client = client or DoclakeClient(args.url)
    for root in args.ingest:
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path.is_file():
                doc = client.upload_and_wait(path)
                print(f"{doc.status.value:8} {path.name}", file=sys.stderr)
    answer = ask(client, args.question, max_tokens=args.max_tokens)
    print(answer.answer)
    for c in answer.citations:
        pages = f", p. {c.page_start}" if c.page_start else ""
        print(f"  [{c.n}] {c.filename or c.doc_id}{pages}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
