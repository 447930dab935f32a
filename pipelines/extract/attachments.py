"""The files a container carries: attachments of e-mails (.eml, Outlook .msg) and members of zip archives.

A container hands back its *direct* attachments only, as bytes beside its text (never in it): the extract
step registers each one as a child document, which the normal chain extracts by itself, so a nested
e-mail or archive opens its own attachments one level deeper, and each child fails on its own.

Everything runs inside the extraction sandbox, and only what passes the bounds of
:class:`~pipelines.extract.config.AttachmentConfig` crosses back to the worker: the depth (levels below
the uploaded document), the count and the decoded (inflated) bytes per container. What a bound refuses
is recorded, never raised: the container itself is still indexed.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import functools
import io
import mimetypes
import zipfile
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from pipelines.contracts.documents import Attachment, AttachmentError, DocFormat, Element, ExtractedDocument
from pipelines.errors import ExtractionError, NoTextFound
from pipelines.extract.cleanup import CharBudget
from pipelines.extract.config import AttachmentConfig

__all__ = ["Attachments", "archive_document", "email_attachments", "listing", "msg_attachments"]

# Individual refusals recorded per container; past it they are counted in one entry (a zip of 10,000
# members declaring 1 GB each must not write 10,000 errors).
_MAX_RECORDED = 20

# Parts of a message that are about it rather than attached to it.
_SIGNATURE_TYPES = frozenset(
    {"application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"}
)

# Outlook attachment methods (PidTagAttachMethod): the file's bytes, or an embedded message.
_ATTACH_BY_VALUE = 1
_ATTACH_EMBEDDED_MSG = 5
_PID_ATTACH_METHOD = 0x3705
_PID_ATTACH_CONTENT_ID = 0x3712
_PID_ATTACHMENT_HIDDEN = 0x7FFE
_PID_DISPLAY_NAME = 0x3001
_EMBEDDED_MSG_STORAGE = "__substg1.0_3701000D"
# An embedded message's property stream has a 24-byte header (the root message's has 32).
_EMBEDDED_HDR_OFFSET = 24


class Attachments(NamedTuple):
    found: list[Attachment]
    errors: list[AttachmentError]


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


class _Bounds:
    """Takes a container's attachments in order while they fit the bounds; records what does not."""

    def __init__(self, config: AttachmentConfig, *, depth: int, kind: str) -> None:
        self.config = config
        self.depth = depth
        self.kind = kind
        self.found: list[Attachment] = []
        self.errors: list[AttachmentError] = []
        self.total = 0
        self.too_deep = 0
        self.over_count = 0
        self.unrecorded = 0

    def refuse(self, filename: str | None, error: str) -> None:
        if len(self.errors) < _MAX_RECORDED:
            self.errors.append(AttachmentError(filename=filename, error=error))
        else:
            self.unrecorded += 1

    def offer(
        self, filename: str, content_type: str, *, inline: bool, size: int, read: Callable[[int], bytes | None]
    ) -> None:
        """Consider one attachment. ``size`` is what the container declares (an upper bound for encoded
        parts); ``read(limit)`` returns the bytes, or None when they turn out longer than ``limit``."""
        config = self.config
        small_inline = inline and content_type.startswith("image/")
        if small_inline and size < config.min_inline_image_bytes:
            return  # a spacer or an icon: not a document
        if self.depth >= config.max_depth:
            self.too_deep += 1
            return
        if len(self.found) >= config.max_count:
            self.over_count += 1
            return
        room = config.max_total_bytes - self.total
        if size > room:
            self.refuse(filename, self._too_big(filename, size))
            return
        try:
            data = read(room)
        except Exception as e:  # a damaged part is that attachment's problem, not the container's
            self.refuse(filename, f"unreadable attachment: {type(e).__name__}: {e}"[:500])
            return
        if data is None:
            self.refuse(filename, f"attachment bomb: {filename} inflates past {_mb(room)}, more than it declares")
            return
        if small_inline and len(data) < config.min_inline_image_bytes:
            return
        self.total += len(data)
        self.found.append(Attachment(filename=filename, content_type=content_type, inline=inline, data=data))

    def _too_big(self, filename: str, size: int) -> str:
        limit = self.config.max_total_bytes
        return (
            f"attachment bomb: {filename} ({_mb(size)}) would take the attachments of this {self.kind} past "
            f"{_mb(limit)} (DOCLAKE_ATTACHMENT_MAX_MB)"
        )

    def result(self) -> Attachments:
        config = self.config
        errors = list(self.errors)
        if self.too_deep:
            errors.insert(
                0,
                AttachmentError(
                    error=(
                        f"attachment bomb: {self.too_deep} attachment(s) not extracted: this {self.kind} is "
                        f"{self.depth} level(s) below the uploaded document, and attachments are extracted at most "
                        f"{config.max_depth} level(s) deep (DOCLAKE_ATTACHMENT_MAX_DEPTH)"
                    )
                ),
            )
        if self.over_count:
            errors.append(
                AttachmentError(
                    error=(
                        f"attachment bomb: this {self.kind} has more than {config.max_count} attachments "
                        f"(DOCLAKE_ATTACHMENT_MAX_COUNT); the first {config.max_count} were extracted, "
                        f"{self.over_count} were not"
                    )
                )
            )
        if self.unrecorded:
            errors.append(AttachmentError(error=f"{self.unrecorded} more attachment(s) refused for the same reasons"))
        return Attachments(self.found, errors)


def _given(data: bytes) -> Callable[[int], bytes | None]:
    """``read`` for bytes already in memory (the container was parsed whole)."""
    return lambda limit: data if len(data) <= limit else None


def _clean_name(name: str | None, fallback: str) -> str:
    """A display name: the base name only (never a path), printable, at most 255 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(ch for ch in base if ch.isprintable())[:255]
    return base or fallback


def _fallback_name(position: int, content_type: str) -> str:
    ext = mimetypes.guess_extension(content_type, strict=False) or ""
    return f"attachment-{position}{ext}"


def listing(attachments: Attachments, *, what: str, budget: CharBudget) -> list[Element]:
    """The text of a container with no text of its own: the names of what it carries (findable by them)."""
    names = [a.filename for a in attachments.found] + [e.filename for e in attachments.errors if e.filename]
    if not names:
        return []
    text = budget.take(f"{what} ({len(names)}):\n" + "\n".join(names))
    return [Element(text=text)] if text else []


# --- RFC 822 messages -------------------------------------------------------------------------------------


def email_attachments(data: bytes, *, depth: int, config: AttachmentConfig) -> Attachments:
    """The attachments and inline images of an RFC 822 message; a nested message is one attachment (.eml).

    ``depth`` is how many levels below the uploaded document this message is (0: it was uploaded).
    """
    bounds = _Bounds(config, depth=depth, kind="message")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    for position, part in enumerate(_attached_parts(msg), start=1):
        _offer_part(bounds, part, position)
    return bounds.result()


def _attached_parts(msg: email.message.Message) -> Iterator[email.message.Message]:
    """Leaf parts that are files rather than the message's body, in message order; nested messages whole."""
    if not msg.is_multipart():
        if msg.get_content_disposition() == "attachment":
            yield msg  # a message that is a single attached file
        return
    for part in msg.get_payload():
        if not isinstance(part, email.message.Message):
            continue
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            yield part
        elif part.is_multipart():
            yield from _attached_parts(part)
        elif ctype in _SIGNATURE_TYPES:
            continue
        elif ctype in ("text/plain", "text/html") and part.get_content_disposition() != "attachment":
            if part.get_filename() is None:
                continue  # a body (or an alternative of it)
            yield part
        else:
            yield part


def _offer_part(bounds: _Bounds, part: email.message.Message, position: int) -> None:
    ctype = part.get_content_type()
    disposition = part.get_content_disposition()
    inline = disposition == "inline" or (disposition is None and part.get("Content-ID") is not None)
    if ctype == "message/rfc822":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(inner, email.message.Message):
            bounds.refuse(part.get_filename(), "unreadable attachment: an attached message without content")
            return
        raw = _message_bytes(inner)
        subject = str(inner.get("Subject") or "").strip()
        name = _clean_name(part.get_filename(), (subject[:200] or f"message-{position}") + ".eml")
        bounds.offer(name, ctype, inline=False, size=len(raw), read=_given(raw))
        return
    name = _clean_name(part.get_filename(), _fallback_name(position, ctype))
    encoded = part.get_payload()
    encoded_len = len(encoded) if isinstance(encoded, str | bytes) else 0
    # Decoded base64 is 3/4 of its text; other encodings never grow on decoding.
    cte = str(part.get("Content-Transfer-Encoding") or "").strip().lower()
    declared = encoded_len * 3 // 4 if cte == "base64" else encoded_len

    def read(limit: int) -> bytes | None:
        decoded = part.get_payload(decode=True)
        data = decoded if isinstance(decoded, bytes) else b""
        return data if len(data) <= limit else None

    bounds.offer(name, ctype, inline=inline, size=declared, read=read)


def _message_bytes(msg: email.message.Message) -> bytes:
    try:
        return msg.as_bytes(policy=email.policy.compat32)
    except Exception:  # a header the generator cannot fold: the default policy refolds it
        return msg.as_bytes(policy=email.policy.default)


# --- Outlook .msg ---------------------------------------------------------------------------------------


def msg_attachments(data: bytes, *, depth: int, config: AttachmentConfig) -> Attachments:
    """The attachments of an Outlook message (python-oxmsg); an embedded message becomes an .eml attachment."""
    from oxmsg import Message

    bounds = _Bounds(config, depth=depth, kind="message")
    msg = Message.load(data)
    _offer_msg_attachments(bounds, msg.attachments)
    return bounds.result()


def _offer_msg_attachments(bounds: _Bounds, attachments: tuple[Any, ...]) -> None:
    for position, att in enumerate(attachments, start=1):
        props = att.properties
        method = props.int_prop_value(_PID_ATTACH_METHOD)
        ctype = att.mime_type or "application/octet-stream"
        if method == _ATTACH_EMBEDDED_MSG:
            title = props.str_prop_value(_PID_DISPLAY_NAME) or f"message-{position}"
            name = _clean_name(None, title[:200] + ".eml")
            try:
                raw = _embedded_as_eml(att)
            except Exception as e:
                bounds.refuse(name, f"unreadable embedded Outlook message: {type(e).__name__}: {e}"[:500])
                continue
            bounds.offer(name, "message/rfc822", inline=False, size=len(raw), read=_given(raw))
            continue
        name = _clean_name(att.file_name, _fallback_name(position, ctype))
        if method != _ATTACH_BY_VALUE:
            bounds.refuse(name, "a linked attachment (a path or a URL in the message, not a file)")
            continue
        inline = bool(props.int_prop_value(_PID_ATTACHMENT_HIDDEN)) or bool(
            props.str_prop_value(_PID_ATTACH_CONTENT_ID)
        )
        blob: bytes = att.file_bytes or b""
        bounds.offer(name, ctype, inline=inline, size=len(blob), read=_given(blob))


def _embedded_as_eml(att: Any) -> bytes:
    """An Outlook message embedded in another, written as an RFC 822 message (its attachments attached).

    python-oxmsg reads only top-level messages; an embedded one is the same property layout in a storage of
    the attachment, with a shorter header.
    """
    from oxmsg import Message
    from oxmsg.properties import Properties

    storage = next((s for s in att._storage.storages if s.name == _EMBEDDED_MSG_STORAGE), None)
    if storage is None:
        raise ExtractionError("the attachment has no message storage")
    inner = Message(storage)
    # A lazyproperty refuses assignment; its cache is the instance dict.
    inner.__dict__["_properties"] = Properties(storage, properties_header_offset=_EMBEDDED_HDR_OFFSET)
    out = email.message.EmailMessage()
    out["Subject"] = inner.subject or ""
    if inner.sender:
        out["From"] = inner.sender
    recipients = [r.email_address for r in inner.recipients if r.email_address]
    if recipients:
        out["To"] = ", ".join(recipients)
    if inner.sent_date is not None:
        out["Date"] = email.utils.format_datetime(inner.sent_date)
    if inner.html_body:
        out.set_content(inner.html_body, subtype="html")
    else:
        out.set_content(inner.body or "")
    for position, sub in enumerate(inner.attachments, start=1):
        method = sub.properties.int_prop_value(_PID_ATTACH_METHOD)
        if method == _ATTACH_EMBEDDED_MSG:
            nested = email.message_from_bytes(_embedded_as_eml(sub), policy=email.policy.default)
            out.add_attachment(nested)
        elif method == _ATTACH_BY_VALUE and sub.file_bytes:
            maintype, _, subtype = (sub.mime_type or "application/octet-stream").partition("/")
            filename = _clean_name(sub.file_name, _fallback_name(position, sub.mime_type or ""))
            out.add_attachment(sub.file_bytes, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return out.as_bytes()


# --- zip archives ---------------------------------------------------------------------------------------

# Members that are metadata of the archiver, not files someone archived.
_JUNK_PREFIXES = ("__MACOSX/",)
_JUNK_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def archive_document(
    data: bytes, *, doc_id: str, filename: str | None, depth: int, config: AttachmentConfig, max_chars: int
) -> ExtractedDocument:
    """A zip archive: its members are its attachments; its text is their names.

    Zip-bomb safe: a member is read only when its declared size fits what is left of the bound, and then
    at most that many bytes are inflated (a member that lies about its size is cut off and refused).

    Raises:
        ExtractionError: the archive cannot be read; NoTextFound: it holds no files.
    """
    bounds = _Bounds(config, depth=depth, kind="archive")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ExtractionError(f"damaged zip archive: {e}", doc_id=doc_id) from e
    with zf:
        for info in zf.infolist():
            if info.is_dir() or info.filename.startswith(_JUNK_PREFIXES):
                continue
            name = _clean_name(info.filename, "member")
            if name in _JUNK_NAMES:
                continue
            if info.flag_bits & 0x1:
                bounds.refuse(name, "encrypted archive member (password-protected)")
                continue
            ctype = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
            bounds.offer(name, ctype, inline=False, size=info.file_size, read=functools.partial(_read_member, zf, info))
    found = bounds.result()
    elements = listing(found, what="Files in the archive", budget=CharBudget(max_chars, doc_id=doc_id))
    if not elements:
        raise NoTextFound("the zip archive holds no files", doc_id=doc_id)
    return ExtractedDocument(
        format=DocFormat.zip,
        mime="application/zip",
        elements=elements,
        attachments=found.found,
        attachment_errors=found.errors,
    )


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    with zf.open(info) as member:
        data = member.read(limit + 1)
    return data if len(data) <= limit else None
