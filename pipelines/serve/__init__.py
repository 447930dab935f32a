"""The read side: dense, keyword and hybrid search, time travel, RAG context and lake statistics."""

__all__: list[str] = []
