"""E-mails and archives made in the test with the stdlib (``email``, ``zipfile``), for the attachment tests."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from email.message import EmailMessage

from pipelines.extract.pdf import minimal_pdf
from tests.scans import text_image, to_bytes

__all__ = ["GIF", "message", "ocr_png", "pdf", "zip_of"]

# A real GIF header: detected from its bytes and refused (an unsupported attachment fails alone).
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 32 + b";"


def message(
    subject: str,
    body: str,
    *,
    files: Sequence[tuple[str, bytes]] = (),
    messages: Sequence[EmailMessage] = (),
    inline_png: bytes | None = None,
) -> EmailMessage:
    """A multipart message: a text and an HTML body, ``files`` attached, ``messages`` attached as
    message/rfc822, and an inline image the HTML body shows (``cid:``)."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = "Dana Ops <dana@example.org>"
    msg["To"] = "team@example.org"
    msg.set_content(body)
    msg.add_alternative(f"<html><body><p>{body}</p><img src='cid:scan'></body></html>", subtype="html")
    if inline_png is not None:
        html = msg.get_payload()[1]  # type: ignore[index]
        html.add_related(inline_png, maintype="image", subtype="png", cid="<scan>", filename="scan.png")
    for name, data in files:
        maintype, subtype = ("text", "plain") if name.endswith(".txt") else ("application", "octet-stream")
        if maintype == "text":
            msg.add_attachment(data.decode(), subtype=subtype, filename=name)
        else:
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    for inner in messages:
        msg.add_attachment(inner)
    return msg


def pdf(text: str) -> bytes:
    return minimal_pdf(text)


def ocr_png(lines: list[str]) -> bytes:
    """A PNG holding ``lines`` only as pixels (large enough not to be skipped as an icon)."""
    return to_bytes([text_image(lines, font_size=48)], "PNG")


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()
