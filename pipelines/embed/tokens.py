"""The Rust tokenizer behind a fast Hugging Face tokenizer, shared by the chunker and the ONNX encoder.

Its own module so that neither of its users imports the other (the model module loads the ONNX encoder
lazily, and the encoder needs only this).
"""

from __future__ import annotations

from typing import Any

__all__ = ["raw_tokenizer"]

# Keyed by the wrapper's id; the wrapper is kept beside the copy so the id cannot be reused.
_RAW: dict[tuple[int, int | None], tuple[Any, Any]] = {}


def raw_tokenizer(tokenizer: Any, *, max_length: int | None = None) -> Any:
    """A private copy of a fast tokenizer's Rust ``tokenizers.Tokenizer`` (no padding; truncated at
    ``max_length`` when given), or None for a slow tokenizer.

    transformers' Python wrapper converts every encoding into dicts (a third of the chunk_embed step's
    non-model time on a big document); the Rust object returns ids and offsets directly. A copy, because
    the wrapper re-configures its own backend's truncation and padding on each call.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    key = (id(tokenizer), max_length)
    found = _RAW.get(key)
    if found is None:
        from tokenizers import Tokenizer

        copy = Tokenizer.from_str(backend.to_str())
        copy.no_padding()
        if max_length:
            copy.enable_truncation(max_length=max_length)
        else:
            copy.no_truncation()
        found = _RAW[key] = (tokenizer, copy)
    return found[1]
