"""A LangChain retriever over the doclake client (optional extra: ``pip install 'doclake[langchain]'``).

``DoclakeRetriever`` returns one ``Document`` per search hit, with the citation fields (doc id,
filename, page span, chunk id, score) and the document's metadata in ``Document.metadata``. With
``mode="context"`` it returns one ``Document`` per rag_context citation instead: merged neighbours,
deduplicated and cut to a token budget — the shape to paste into a prompt.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from app.client import AsyncDoclakeClient, DoclakeClient
from app.schemas import RagContext, SearchResponse
from pipelines.contracts.ids import MetadataValue

__all__ = ["DoclakeRetriever"]


class DoclakeRetriever(BaseRetriever):
    """Retrieve chunks from a running doclake service.

    Give ``client`` for sync use (``invoke``), ``async_client`` for ``ainvoke``; either may be
    omitted, and ``ainvoke`` without an async client runs the sync one in a thread (LangChain's default).
    """

    client: DoclakeClient | None = None
    async_client: AsyncDoclakeClient | None = None
    top_k: int = Field(default=5, ge=1, le=100, description="Chunks per query (mode='search').")
    filter: dict[str, MetadataValue] = Field(default_factory=dict, description="Exact-match metadata filter.")
    mode: Literal["search", "context"] = Field(default="search", description="Raw hits, or rag_context blocks.")
    max_tokens: int = Field(default=1024, ge=16, description="Token budget (mode='context').")
    principals: list[str] = Field(
        default_factory=list,
        description="The end user's identities: documents with an acl are retrieved only when it names one of them.",
    )

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.client is None:
            raise ValueError("DoclakeRetriever needs a client for synchronous use")
        if self.mode == "context":
            return _from_context(
                self.client.rag_context(
                    query, max_tokens=self.max_tokens, filter=self.filter, principals=self.principals
                )
            )
        return _from_search(self.client.search(query, top_k=self.top_k, filter=self.filter, principals=self.principals))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        if self.async_client is None:
            return await super()._aget_relevant_documents(query, run_manager=run_manager)
        if self.mode == "context":
            context = await self.async_client.rag_context(
                query, max_tokens=self.max_tokens, filter=self.filter, principals=self.principals
            )
            return _from_context(context)
        response = await self.async_client.search(
            query, top_k=self.top_k, filter=self.filter, principals=self.principals
        )
        return _from_search(response)


def _from_search(response: SearchResponse) -> list[Document]:
    docs = []
    for hit in response.results:
        metadata: dict[str, Any] = {
            **hit.metadata,
            "doc_id": hit.doc_id,
            "version": hit.version,
            "chunk_id": hit.chunk_id,
            "filename": hit.filename,
            "page_start": hit.page_start,
            "page_end": hit.page_end,
            "score": hit.score,
        }
        docs.append(Document(page_content=hit.text, metadata=metadata, id=hit.chunk_id))
    return docs


def _from_context(context: RagContext) -> list[Document]:
    return [
        Document(page_content=context.context[c.context_start : c.context_end], metadata=c.model_dump())
        for c in context.citations
    ]
