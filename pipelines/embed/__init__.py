"""Chunking and embedding: the tokenizer-aware chunker and the sentence-transformers / ONNX encoders."""

__all__: list[str] = []
