"""Retrieval quality built in: golden sets (BEIR qrels + queries), nDCG@10 / Recall@10 of an index, the reindex gate."""

__all__: list[str] = []
