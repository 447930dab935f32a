"""RTF, OpenDocument text and EPUB, converted to HTML by pandoc and partitioned as HTML.

Why the ``pandoc`` binary (Debian's ``pandoc``) called directly: it reads all three formats offline and
fast (a 400-byte RTF or a 14 KB ODT in ~0.3 s, a 200 KB EPUB book in ~6 s), keeps headings, lists and
tables as HTML, and unstructured's own ``partition_rtf``/``partition_odt``/``partition_epub`` are thin
wrappers over the same binary through pypandoc (a dependency we would add only to write temporary files).
The bytes go through stdin, ``--sandbox`` stops a document from making pandoc read other files or fetch
URLs (RTF and EPUB can reference both), and the conversion is bounded in time and dies with the extraction
process, so the sandbox's limits hold for it too (its address-space bound is inherited).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from typing import Literal

from pipelines.errors import ExtractionError, ExtractionLimitExceeded

__all__ = ["PANDOC_READERS", "pandoc_html"]

PandocReader = Literal["rtf", "odt", "epub"]
PANDOC_READERS: tuple[PandocReader, ...] = ("rtf", "odt", "epub")
"""The pandoc input formats doclake reads through pandoc (``-f``); each is a DocFormat of the same value."""


def pandoc_html(data: bytes, reader: PandocReader, *, doc_id: str, timeout_s: float) -> str:
    """Convert a document to an HTML fragment with pandoc.

    Raises:
        ExtractionError: pandoc is not installed, or it cannot read the file (its first error line is kept).
        ExtractionLimitExceeded: the conversion ran past ``timeout_s`` (pandoc is killed).
    """
    pandoc = shutil.which("pandoc")
    name = reader.upper()
    if pandoc is None:
        raise ExtractionError(
            f"{name} files are read by pandoc, which is not installed: `apt-get install pandoc` "
            "(scripts/setup.sh does it)",
            doc_id=doc_id,
        )
    try:
        done = subprocess.run(
            [pandoc, "--sandbox", "-f", reader, "-t", "html", "--wrap=none"],
            input=data,
            capture_output=True,
            timeout=timeout_s,
            preexec_fn=_die_with_parent,
        )
    except subprocess.TimeoutExpired as e:
        raise ExtractionLimitExceeded(
            f"converting the {name} file took longer than {timeout_s:g} s and was stopped", doc_id=doc_id
        ) from e
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = lines[0][:300] if lines else f"exit code {done.returncode}"
        raise ExtractionError(f"could not parse the {name} file: pandoc: {reason}", doc_id=doc_id)
    return done.stdout.decode("utf-8", "replace")


def _die_with_parent() -> None:
    # The sandbox kills the extraction process, not its children: without this a pandoc stuck on a hostile
    # file would outlive the kill until its own timeout.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # not glibc Linux: the timeout still bounds it
        pass
