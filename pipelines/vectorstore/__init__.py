"""Vector stores: one protocol, LanceDB (embedded default) and Pinecone, and every write to them."""

__all__: list[str] = []
