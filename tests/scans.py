"""Scans made in the test: text rendered by Pillow into images, image-only PDFs and multi-page TIFFs.

Real OCR input without fixtures: Tesseract must read back what was drawn, so a test can look for a
phrase that exists nowhere but in the pixels.
"""

from __future__ import annotations

import io
import struct
import subprocess
import zlib

from PIL import Image, ImageDraw, ImageFont

__all__ = ["cjk_font", "image_pdf", "png_bomb", "text_image", "to_bytes"]


def text_image(
    lines: list[str], *, width: int = 1400, font_size: int = 36, rotate: int = 0, font_file: str | None = None
) -> Image.Image:
    """A white grayscale page with ``lines`` in black, as a 200-300 DPI scan of a letter would look.

    ``font_file``: a TrueType/OpenType font to draw with (Pillow's default font has no CJK glyphs).
    """
    font = ImageFont.truetype(font_file, font_size) if font_file else ImageFont.load_default(size=font_size)
    line_height = int(font_size * 1.6)
    image = Image.new("L", (width, 80 + line_height * len(lines)), color=255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((60, 40 + i * line_height), line, fill=0, font=font)
    return image.rotate(rotate, expand=True, fillcolor=255) if rotate else image


def cjk_font() -> str:
    """The file of an installed font with Han and kana glyphs (scripts/setup.sh installs fonts-wqy-microhei)."""
    found = subprocess.run(["fc-match", "-f", "%{file}", ":lang=ja"], capture_output=True, text=True, check=True)
    return found.stdout.strip()


def to_bytes(images: list[Image.Image], fmt: str) -> bytes:
    """The images saved as one file of ``fmt`` (PNG, JPEG, WEBP: the first image; TIFF, PDF: every image)."""
    out = io.BytesIO()
    if fmt in ("TIFF", "PDF") and len(images) > 1:
        images[0].save(out, fmt, save_all=True, append_images=images[1:], resolution=200.0)
    elif fmt == "PDF":
        images[0].save(out, fmt, resolution=200.0)
    else:
        images[0].save(out, fmt)
    return out.getvalue()


def image_pdf(images: list[Image.Image]) -> bytes:
    """An image-only PDF (no text layer at all), one page per image, as a scanner writes it."""
    return to_bytes(images, "PDF")


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` pixels over a few bytes of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )
