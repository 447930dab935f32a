"""Text hygiene shared by every extractor, and the cap on how much text one document may yield."""

from __future__ import annotations

import re

from pipelines.errors import ExtractionLimitExceeded

__all__ = ["CharBudget", "clean_text"]

# C0/C1 controls other than tab and newline, and U+FFFE/U+FFFF. PDFs map unknown glyphs to NUL; Arrow,
# Delta and most tokenizers reject or mangle such characters downstream.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
_SURROGATE_RE = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Normalise newlines, drop control characters, replace lone surrogates (not UTF-8 encodable), strip."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_RE.sub("", text)
    text = _SURROGATE_RE.sub("\ufffd", text)
    return text.strip()


class CharBudget:
    """Counts the characters a document yields and fails it once they exceed ``max_chars``."""

    def __init__(self, max_chars: int, *, doc_id: str) -> None:
        self.max_chars = max_chars
        self.used = 0
        self.doc_id = doc_id

    def take(self, text: str) -> str:
        """Clean ``text``, charge it to the budget and return it (empty when nothing is left of it)."""
        text = clean_text(text)
        self.used += len(text)
        if self.used > self.max_chars:
            raise ExtractionLimitExceeded(
                f"the document yields more than {self.max_chars:,} characters of text", doc_id=self.doc_id
            )
        return text
