"""What ``doclake ingest`` shows: one overall progress bar on a terminal (rich, on stderr), plain lines
otherwise, and a summary at the end (indexed, failed by reason, duplicates, rejected)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import typer
from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from app.schemas import DocumentPublic

__all__ = ["IngestTally", "PlainView", "RichView", "WaitView", "reason_of", "view_for"]


def reason_of(error: str | None) -> str:
    """A failure's reason for grouping: the error code before the message (``encrypted: …`` → ``encrypted``)."""
    if not error:
        return "unknown"
    code, sep, _ = error.partition(":")
    return code.strip() if sep and code.strip() and " " not in code.strip() else error.strip()


class IngestTally(BaseModel):
    """What became of the files of one ``doclake ingest``."""

    files: int = 0
    queued: int = 0
    duplicates: int = Field(default=0, description="Identical to their document's current version: nothing queued.")
    rejected: int = 0
    indexed: int = 0
    chunks: int = 0
    failed: dict[str, list[str]] = Field(default_factory=dict, description="Failure reason → the files' names.")
    attachments: dict[str, int] = Field(
        default_factory=dict, description="Attachments (of e-mails, archives) by final status; they fail alone."
    )
    waited: bool = False

    def record(self, name: str, doc: DocumentPublic, *, duplicate: bool = False) -> None:
        """A finished document; an indexed duplicate is already counted among the duplicates."""
        if doc.status == "indexed":
            if duplicate:
                return
            self.indexed += 1
            self.chunks += doc.chunks
        else:
            reason = reason_of(doc.error) if doc.status == "failed" else doc.status.value  # e.g. deleted meanwhile
            self.failed.setdefault(reason, []).append(name)

    @property
    def failures(self) -> int:
        return self.rejected + sum(len(names) for names in self.failed.values())

    def summary(self) -> list[str]:
        """The closing lines: counts first, then each failure reason with a few of its files."""
        parts = [f"{self.files} files"]
        if self.waited:
            parts.append(f"{self.indexed} indexed ({self.chunks} chunks)")
            parts.append(f"{sum(len(n) for n in self.failed.values())} failed")
        else:
            parts.append(f"{self.queued} queued")
        parts += [f"{self.duplicates} unchanged (duplicates)", f"{self.rejected} rejected"]
        lines = ["summary: " + ", ".join(parts)]
        for reason, names in sorted(self.failed.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            lines.append(f"  failed {len(names)}x {reason}: {shown}")
        if self.attachments:
            lines.append("attachments: " + ", ".join(f"{n} {s}" for s, n in sorted(self.attachments.items())))
        return lines


class WaitView(Protocol):
    """How the progress of an ingest is shown while files upload and documents are processed."""

    def uploaded(self, path: Path, line: str) -> None: ...
    def start_waiting(self, total: int) -> None: ...
    def finished(self, path: Path, doc: DocumentPublic, tally: IngestTally) -> None: ...
    def attachment(self, where: str, doc: DocumentPublic) -> None: ...
    def close(self) -> None: ...


def _line(where: str, doc: DocumentPublic) -> str:
    """``<status> <doc_id> v<version> <where>: <chunks or error>``, one line per document."""
    detail = f"{doc.chunks} chunks" if doc.status == "indexed" else (doc.error or "")
    return f"{doc.status.value:9} {doc.doc_id} v{doc.version} {where}: {detail}"


class PlainView:
    """One line per uploaded and per finished file (and attachment) on stdout, files with the count done
    so far (logs, pipes)."""

    def __init__(self) -> None:
        self._total = 0
        self._done = 0

    def uploaded(self, path: Path, line: str) -> None:
        typer.echo(line)

    def start_waiting(self, total: int) -> None:
        self._total = total

    def finished(self, path: Path, doc: DocumentPublic, tally: IngestTally) -> None:
        self._done += 1
        typer.echo(f"{_line(path.name, doc)} [{self._done}/{self._total}]")

    def attachment(self, where: str, doc: DocumentPublic) -> None:
        typer.echo(_line(where, doc))

    def close(self) -> None:
        pass


class RichView:
    """One overall bar on stderr: files uploaded, then files done of the total with chunks and an ETA.

    Only failures (and refused files) are printed, above the bar, so a thousand files stay readable.
    """

    def __init__(self, files: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files · {task.fields[chunks]} chunks · {task.fields[failed]} failed"),
            TextColumn("· ETA"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task("uploading", total=files, chunks=0, failed=0)
        self._progress.start()

    def uploaded(self, path: Path, line: str) -> None:
        if line.startswith("rejected"):
            self._progress.console.print(line, markup=False, highlight=False)
        self._progress.advance(self._task)

    def start_waiting(self, total: int) -> None:
        self._progress.reset(self._task, total=total, description="indexing")

    def finished(self, path: Path, doc: DocumentPublic, tally: IngestTally) -> None:
        if doc.status != "indexed":
            self._progress.console.print(_line(path.name, doc), markup=False, highlight=False)
        failed = sum(len(names) for names in tally.failed.values())
        self._progress.update(self._task, advance=1, chunks=tally.chunks, failed=failed)

    def attachment(self, where: str, doc: DocumentPublic) -> None:
        if doc.status != "indexed":
            self._progress.console.print(_line(where, doc), markup=False, highlight=False)

    def close(self) -> None:
        self._progress.stop()


def view_for(files: int, *, wait: bool) -> WaitView:
    """The bar when waiting on a terminal (stderr is a tty), plain lines otherwise."""
    return RichView(files) if wait and sys.stderr.isatty() else PlainView()
