"""Extraction: turn an uploaded file's bytes into ordered text elements.

Formats are detected from the bytes (:func:`detect_format`); PDFs are read with pypdf page by page,
everything else with unstructured's format-specific partitioners, run offline
(:mod:`pipelines.extract.offline_nlp`). :func:`extract_bytes` runs the work in a child process bounded
in time and memory, because the input is untrusted.

Importing this package is cheap; the parsers are imported on first use or by :func:`warm_up`.
"""

from pipelines.extract.config import ExtractConfig
from pipelines.extract.detect import detect_format
from pipelines.extract.extractor import extract_bytes, extract_unbounded, warm_up

__all__ = ["ExtractConfig", "detect_format", "extract_bytes", "extract_unbounded", "warm_up"]
