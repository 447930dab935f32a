"""The example RAG app answers from the real corpus, with citations, through the typed client."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from fastapi.testclient import TestClient

from app.client import DoclakeClient
from app.schemas import RagContext

REPO = Path(__file__).resolve().parents[2]


def _load_example() -> ModuleType:
    # examples/ is not an installed package: load the script the way a reader would run it.
    spec = importlib.util.spec_from_file_location("rag_app", REPO / "examples" / "rag_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rag_app"] = module  # pydantic resolves the module's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def client(inline_api: TestClient) -> DoclakeClient:
    return DoclakeClient(http=inline_api)


def test_rag_app_answers_from_the_corpus_with_citations(
    client: DoclakeClient, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rag_app = _load_example()
    readme = corpus / "md" / "readability__README.md"
    novel = corpus / "txt" / "unst__book-war-and-peace-1p.txt"
    assert rag_app.main(["How do I install Readability?", "--ingest", str(readme), str(novel)], client=client) == 0
    out = capsys.readouterr().out
    assert "npm" in out and "[1] readability__README.md" in out

    answer = rag_app.ask(client, "How do I parse a document with Readability?")
    assert answer.citations and {c.filename for c in answer.citations} == {"readability__README.md"}
    quoted = [part.strip() for part in re.split(r"\[\d+\]", answer.answer) if part.strip()]
    assert quoted and all(q in answer.context for q in quoted)  # extractive: every sentence is from the context

    seen: list[RagContext] = []

    def generate(question: str, context: RagContext) -> str:
        seen.append(context)  # the pluggable generator gets the cited, budgeted context
        return f"Genoa and Lucca [{context.citations[0].n}]"

    answer = rag_app.ask(
        client, "What did Anna Pavlovna say about Genoa and Lucca?", answer_fn=generate, max_tokens=128
    )
    assert seen[0].tokens <= 128 and answer.answer.startswith("Genoa")
    assert [c.filename for c in answer.citations] == ["unst__book-war-and-peace-1p.txt"]
