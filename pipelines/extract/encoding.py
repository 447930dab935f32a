"""Turning the bytes of a text-family file (txt, md, csv, html, eml) into a string.

Order: byte-order mark, then UTF-16/32 without a BOM (recognised by where the NUL bytes sit), then
strict UTF-8, then a charset the document declares itself (HTML ``<meta charset>``, XML declaration),
then charset_normalizer's guess. ``None`` means "this is not text".
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple

__all__ = ["DecodedText", "decode_text"]

# Checked longest first: the UTF-32-LE BOM begins with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_SAMPLE = 4096
_DECLARED_CHARSET_RE = re.compile(
    rb"""(?:<meta[^>]{0,200}?charset\s*=\s*["']?|<\?xml[^>]{0,100}?encoding\s*=\s*["'])([a-zA-Z0-9_.:-]{2,40})""",
    re.IGNORECASE,
)
# Control characters that never occur in real text (everything below 0x20 except \t \n \v \f \r, and 0x1b
# which some old plain-text files use for printer escapes).
_BINARY_CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")


class DecodedText(NamedTuple):
    text: str
    encoding: str


def decode_text(data: bytes) -> DecodedText | None:
    """Decode ``data`` as text, or return None when it does not look like text at all."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return DecodedText(data.decode(codec), codec)
            except UnicodeDecodeError:
                break  # a BOM followed by garbage: let the checks below decide
    sample = data[:_SAMPLE]
    if b"\x00" in sample:
        wide = _decode_wide_without_bom(data)
        if wide is None:
            # Non-Latin UTF-16 (Cyrillic, Greek) has too few zero bytes for the pattern; charset_normalizer
            # recognises it. Anything else with NUL bytes is binary.
            guess = _guess(data)
            if guess is not None and guess.encoding.replace("-", "_").startswith(("utf_16", "utf_32")):
                return guess
        return wide
    try:
        return _checked(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        pass
    declared = _declared_charset(sample)
    if declared is not None:
        try:
            return _checked(data.decode(declared), declared)
        except (UnicodeDecodeError, LookupError):
            pass
    return _guess(data)


def _checked(text: str, encoding: str) -> DecodedText | None:
    sample = text[:_SAMPLE]
    if sample and len(_BINARY_CONTROL_RE.findall(sample)) > max(2, len(sample) // 100):
        return None
    return DecodedText(text, encoding)


def _decode_wide_without_bom(data: bytes) -> DecodedText | None:
    """UTF-16/32 without a BOM: mostly-Latin text has its zero bytes at fixed positions in each unit."""
    sample = data[: _SAMPLE - _SAMPLE % 4]
    if len(sample) < 4:
        return None
    zeros = [0, 0, 0, 0]
    for i, b in enumerate(sample):
        if b == 0:
            zeros[i % 4] += 1
    units = len(sample) / 4
    # Fraction of 4-byte groups with a zero at each offset.
    z = [n / units for n in zeros]
    candidates: list[str] = []
    if z[2] > 0.9 and z[3] > 0.9:
        candidates.append("utf-32-le")
    if z[0] > 0.9 and z[1] > 0.9:
        candidates.append("utf-32-be")
    if z[1] > 0.5 and z[3] > 0.5:
        candidates.append("utf-16-le")
    if z[0] > 0.5 and z[2] > 0.5:
        candidates.append("utf-16-be")
    for codec in candidates:
        if len(data) % (4 if "32" in codec else 2):
            continue
        try:
            decoded = _checked(data.decode(codec), codec)
        except UnicodeDecodeError:
            continue
        if decoded is not None:
            return decoded
    return None


def _declared_charset(sample: bytes) -> str | None:
    match = _DECLARED_CHARSET_RE.search(sample)
    if match is None:
        return None
    name = match.group(1).decode("ascii").lower()
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    # A page that declares a wide encoding but was not wide (no NULs, checked above) is lying;
    # and "latin-1"/"ascii" labels mean windows-1252 on the web (WHATWG Encoding Standard).
    if codec.startswith(("utf-16", "utf-32")):
        return None
    if codec in ("latin-1", "iso8859-1", "ascii"):
        return "cp1252"
    return codec


def _guess(data: bytes) -> DecodedText | None:
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    encoding = best.encoding
    # charset_normalizer breaks ties between single-byte Western code pages arbitrarily (it picked cp1250
    # for a cp1252 page, turning "ñ" into "ń"). Among equally plausible readings prefer windows-1252, the
    # web's and Windows' default legacy encoding.
    if encoding != "cp1252":
        for m in matches:
            if m.chaos <= best.chaos + 0.005 and "cp1252" in m.could_be_from_charset:
                encoding = "cp1252"
                break
    try:
        return _checked(data.decode(encoding), encoding)
    except (UnicodeDecodeError, LookupError):
        return _checked(str(best), best.encoding)
