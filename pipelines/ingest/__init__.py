"""The ingestion steps (register → extract → chunk_embed → mirror), their guards, and the one step runner."""

__all__: list[str] = []
