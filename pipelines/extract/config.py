"""The extraction step's options."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["AttachmentConfig", "ExtractConfig", "OcrConfig", "OcrMode"]


class OcrMode(StrEnum):
    auto = "auto"
    """OCR the pages that have no usable text layer, and every image."""
    off = "off"
    """Never OCR: image-only pages and images yield no text."""
    force = "force"
    """OCR every page, ignoring any text layer (a text layer known to be wrong)."""


class OcrConfig(BaseModel):
    """How pages without a usable text layer, and images, are read."""

    model_config = ConfigDict(frozen=True)

    mode: OcrMode = Field(default=OcrMode.auto, description="When to OCR a page.")
    languages: tuple[str, ...] = Field(
        default=("eng",), min_length=1, description="Tesseract language packs, tried together on every page."
    )
    script_detect: bool = Field(
        default=True,
        description=(
            "When a page's reading with `languages` is unsure, Tesseract's orientation and script detection (the "
            "`osd` pack) names its script; an installed pack for it that is not in `languages` (e.g. Han, "
            "Japanese, Hangul) reads the page again, before `languages`, and the surer reading is kept."
        ),
    )
    dpi: int = Field(default=300, ge=72, le=600, description="Resolution PDF pages are rendered at for OCR.")
    page_timeout_s: float = Field(
        default=60.0, gt=0, description="Wall-clock bound on one page's OCR; a page past it fails alone."
    )
    max_pixels: int = Field(
        default=90_000_000,
        ge=1_000_000,
        description=(
            "Most pixels one image (or image frame) may have; a larger one is refused as a decompression bomb. "
            "PDF pages are rendered at a lower resolution instead when the DPI would exceed it."
        ),
    )

    deferred: bool = Field(
        default=False,
        description=(
            "Read no page by OCR here: a document that needs OCR raises `OcrDeferred` instead, after only its "
            "text layer was looked at, so the caller can send it where OCR may take its time (the `ocr` queue)."
        ),
    )

    @field_validator("languages", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        # "eng+deu" (Tesseract's own syntax) or "eng,deu" (an environment variable) both mean two packs.
        if isinstance(value, str):
            return tuple(p.strip() for p in value.replace("+", ",").split(",") if p.strip())
        return value

    @property
    def tesseract_lang(self) -> str:
        return "+".join(self.languages)


class AttachmentConfig(BaseModel):
    """Bounds on the files a container (e-mail, archive) hands back as attachments; past one the container is
    still indexed and the refusal is recorded on it (``attachment_errors``, "attachment bomb: ...")."""

    model_config = ConfigDict(frozen=True)

    max_depth: int = Field(
        default=3,
        ge=0,
        description=(
            "Most levels of attachments below an uploaded document (an attachment of an attachment is level 2); "
            "a container at the last level keeps its text and its own attachments are refused. 0: none extracted."
        ),
    )
    max_count: int = Field(default=50, ge=0, description="Most attachments extracted from one container.")
    max_total_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=0,
        description="Most bytes of attachments extracted from one container, decoded (archive members: inflated).",
    )
    min_inline_image_bytes: int = Field(
        default=2048,
        ge=0,
        description=(
            "Inline images (shown in an e-mail's body) smaller than this are skipped, not extracted: spacers, "
            "logos and icons, too small to hold text OCR could read. Attached images are always extracted."
        ),
    )


class ExtractConfig(BaseModel):
    """Bounds on extracting one file; the sandbox enforces the first two, the extractors the rest."""

    model_config = ConfigDict(frozen=True)

    timeout_s: float = Field(
        default=120.0,
        gt=0,
        description=(
            "Wall-clock bound on extracting one file; the extraction process is killed past it. Each page "
            "OCR'd extends it by up to `ocr.page_timeout_s`, so a long scan is bounded per page, not refused."
        ),
    )
    memory_mb: int = Field(
        default=2048,
        ge=64,
        description=(
            "Address space the extraction process may add on top of what it inherited from its parent "
            "(RLIMIT_AS is set to the parent's current size plus this)."
        ),
    )
    max_chars: int = Field(
        default=20_000_000,
        ge=1,
        description="Most characters of text one document may yield; beyond it extraction fails as too large.",
    )
    ocr: OcrConfig = Field(default_factory=OcrConfig, description="OCR of scans, image-only pages and images.")
    attachments: AttachmentConfig = Field(
        default_factory=AttachmentConfig, description="Bounds on the attachments of e-mails and archives."
    )
