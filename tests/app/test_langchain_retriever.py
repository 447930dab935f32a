"""The LangChain retriever over the typed clients, against the real langchain-core interface."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi.testclient import TestClient
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda

from app.client import AsyncDoclakeClient, DoclakeClient
from app.langchain_retriever import DoclakeRetriever


@pytest.fixture()
def served(inline_api: TestClient) -> TestClient:
    client = DoclakeClient(http=inline_api)
    client.upload(
        b"# Certificates\n\nTLS certificates renew fourteen days before expiry.",
        doc_id="tls",
        filename="tls.md",
        metadata={"team": "sec"},
    )
    client.upload(b"# Backups\n\nBackups are kept for thirty days.", doc_id="backups", filename="b.md")
    return inline_api


def test_retriever_is_a_langchain_runnable(served: TestClient) -> None:
    retriever = DoclakeRetriever(client=DoclakeClient(http=served), top_k=2)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("when do certificates renew?")
    assert all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["doc_id"] == "tls" and docs[0].metadata["filename"] == "tls.md"
    assert docs[0].metadata["team"] == "sec" and "fourteen days" in docs[0].page_content
    assert docs[0].id == docs[0].metadata["chunk_id"]

    filtered = DoclakeRetriever(client=DoclakeClient(http=served), filter={"team": "sec"})
    assert {d.metadata["doc_id"] for d in filtered.invoke("backups")} == {"tls"}

    # Composes in a chain like any retriever.
    chain = retriever | RunnableLambda(lambda docs: [d.metadata["doc_id"] for d in docs])
    assert chain.invoke("how long are backups kept?")[0] == "backups"


def test_context_mode_returns_cited_blocks(served: TestClient) -> None:
    retriever = DoclakeRetriever(client=DoclakeClient(http=served), mode="context", max_tokens=64)
    docs = retriever.invoke("how long are backups kept?")
    assert docs[0].metadata["n"] == 1 and docs[0].metadata["doc_id"] == "backups"
    assert docs[0].page_content.startswith("Backups")


def test_async_retrieval_uses_the_async_client(served: TestClient) -> None:
    async def run() -> list[Document]:
        transport = httpx.ASGITransport(app=served.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://doclake") as http:
            retriever = DoclakeRetriever(async_client=AsyncDoclakeClient(http=http), top_k=1)
            return await retriever.ainvoke("when do certificates renew?")

    (doc,) = asyncio.run(run())
    assert doc.metadata["doc_id"] == "tls"
