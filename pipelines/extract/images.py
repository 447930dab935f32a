"""Images as documents: PNG, JPEG, TIFF (every frame a page) and WebP, read by OCR.

Pillow opens an image lazily (the header only), so its size is checked against the pixel limit before
a single pixel is decoded: a decompression bomb (a few KB that decode to gigapixels) fails in
milliseconds with a clear reason instead of exhausting the sandbox's memory.
"""

from __future__ import annotations

import io

from pipelines.contracts.documents import PageError
from pipelines.errors import ExtractionError, ExtractionLimitExceeded, NoTextFound
from pipelines.extract.cleanup import CharBudget
from pipelines.extract.config import OcrConfig, OcrMode
from pipelines.extract.ocr import OcrDeferred
from pipelines.extract.paged import PagedText, read_page_by_ocr

__all__ = ["IMAGE_MIMES", "extract_image", "image_mime"]

IMAGE_MIMES: dict[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg", "TIFF": "image/tiff", "WEBP": "image/webp"}
"""Pillow format name → MIME type of the image formats read as documents."""


def image_mime(data: bytes) -> str | None:
    """The MIME type of an image format read as a document, from its magic bytes; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def extract_image(data: bytes, *, doc_id: str, max_chars: int, ocr: OcrConfig | None = None) -> PagedText:
    """OCR every frame of an image.

    Raises:
        ExtractionLimitExceeded: a frame has more pixels than ``ocr.max_pixels``.
        NoTextFound: OCR is off, or it read no text.
        ExtractionError: the image cannot be decoded, or every frame failed.
    """
    from PIL import Image, ImageSequence, UnidentifiedImageError

    ocr = ocr or OcrConfig()
    if ocr.mode is OcrMode.off:
        raise NoTextFound("the file is an image and OCR is off (DOCLAKE_OCR=off)", doc_id=doc_id)
    # Pillow's own guard (an error at twice its limit) backs ours up for frames it decodes internally.
    Image.MAX_IMAGE_PIXELS = ocr.max_pixels
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ExtractionError(f"not a readable image: {type(e).__name__}: {e}", doc_id=doc_id) from e
    except Image.DecompressionBombError as e:
        raise ExtractionLimitExceeded(f"the image is too large to read: {e}", doc_id=doc_id) from e
    if ocr.deferred:
        # Only after the header check: a decompression bomb fails here, in the fast lane, in milliseconds.
        with image:
            for number, frame in enumerate(ImageSequence.Iterator(image), 1):
                _check_pixels(frame.size, number, ocr, doc_id)
        raise OcrDeferred("an image is read by OCR", doc_id=doc_id)
    budget = CharBudget(max_chars, doc_id=doc_id)
    out = PagedText(elements=[], page_count=0)
    with image:
        for number, frame in enumerate(ImageSequence.Iterator(image), 1):
            out.page_count = number
            _check_pixels(frame.size, number, ocr, doc_id)
            try:
                frame.load()
                page_image = frame.convert("L") if frame.mode not in ("L", "1") else frame.copy()
            except MemoryError:
                raise
            except Exception as e:  # one damaged frame of a fax: the others are still read
                out.page_errors.append(PageError(page=number, error=f"frame not decodable: {type(e).__name__}: {e}"))
                continue
            read_page_by_ocr(page_image, ocr, page=number, budget=budget, out=out, doc_id=doc_id)
    if out.page_count and len(out.page_errors) == out.page_count:
        raise ExtractionError(f"no frame of the image could be read: {out.page_errors[0].error}", doc_id=doc_id)
    if not any(ch.isalnum() for e in out.elements for ch in e.text):
        raise NoTextFound(f"no text found: OCR ({ocr.tesseract_lang}) read no text in the image", doc_id=doc_id)
    return out


def _check_pixels(size: tuple[int, int], number: int, ocr: OcrConfig, doc_id: str) -> None:
    width, height = size
    if width * height > ocr.max_pixels:
        raise ExtractionLimitExceeded(
            f"image frame {number} has {width}x{height} = {width * height:,} pixels, more than the "
            f"limit of {ocr.max_pixels:,} (DOCLAKE_OCR_MAX_PIXELS): refused as a possible decompression bomb",
            doc_id=doc_id,
        )
