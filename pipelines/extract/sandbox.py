"""Run one function in a child process bounded in wall time and address space.

Parsers meet hostile input (decompression bombs, recursive object graphs, files that make a parser
loop): rather than trusting each parser's own guards, extraction runs in a forked child that is killed
when it overruns. ``fork`` is used where the platform has it: the worker already imported the parsers
(:func:`pipelines.extract.warm_up`), and a forked child shares them copy-on-write instead of paying the
seconds of imports again.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from pipelines.errors import DocLakeError, ExtractionError, ExtractionLimitExceeded

__all__ = ["RemoteTraceback", "heartbeat", "run_bounded"]

T = TypeVar("T")

# How long to wait for a child that already answered to exit before killing it (a library may have left a
# non-daemon thread that multiprocessing's exit path waits for).
_EXIT_GRACE_S = 2.0


# In a bounded child: the pipe to the parent, over which heartbeat() reports progress.
_progress_conn: Connection | None = None


def heartbeat() -> None:
    """Tell the parent that a unit of bounded work (one OCR'd page) finished: its time bound restarts.

    A no-op outside a bounded child (in-process extraction, tests).
    """
    if _progress_conn is not None:
        _progress_conn.send(("beat",))


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in the child, chained as the ``__cause__``."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def run_bounded(
    fn: Callable[..., T],
    *args: Any,
    timeout_s: float,
    memory_mb: int,
    doc_id: str | None = None,
    beat_s: float = 0.0,
) -> T:
    """Call ``fn(*args)`` in a child process and return its result.

    The child's address space is limited to what it inherited plus ``memory_mb``; it is SIGKILLed after
    ``timeout_s`` seconds, or, when ``beat_s`` > 0, ``beat_s`` seconds after its last :func:`heartbeat`
    if that is later: work made of many bounded units (a scan's pages) is bounded per unit, while a
    child that hangs is still stopped. The child is always reaped before this returns or raises.

    Raises:
        ExtractionLimitExceeded: the time bound passed, the child ran out of memory, or it died by a signal.
        DocLakeError: any doclake error the function raised, unchanged.
        ExtractionError: any other exception the function raised (type and message kept), or a child that
            exited without an answer.
    """
    ctx = _context()
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(sender, fn, args, memory_mb), name="doclake-extract", daemon=True)
    started = time.monotonic()
    outcome: tuple[Any, ...] | None = None
    exitcode: int | None = None
    try:
        try:
            with _children_allowed():
                proc.start()
        finally:
            # The parent's copy of the write end must be closed, or the pipe never reports EOF when the
            # child dies without answering.
            sender.close()
        deadline = started + timeout_s
        while True:
            # poll() also returns as soon as the child dies (EOF), so a crash is not mistaken for slowness.
            if not receiver.poll(max(0.0, deadline - time.monotonic())):
                _kill(proc)
                raise ExtractionLimitExceeded(
                    f"extraction took longer than {_bound(timeout_s, beat_s)} and was stopped", doc_id=doc_id
                )
            try:
                outcome = receiver.recv()
            except EOFError:
                outcome = None
            if outcome is not None and outcome[0] == "beat":
                deadline = max(deadline, time.monotonic() + beat_s)
                outcome = None
                continue
            break
    finally:
        receiver.close()
        exitcode = _reap(proc)
    if outcome is None:
        raise _died_without_answer(exitcode, time.monotonic() - started, doc_id)
    return _unwrap(outcome, doc_id)  # type: ignore[no-any-return]


def _bound(timeout_s: float, beat_s: float) -> str:
    if beat_s > 0:
        return f"{timeout_s:g} s (or {beat_s:g} s without progress)"
    return f"{timeout_s:g} s"


@contextmanager
def _children_allowed() -> Iterator[None]:
    """Let a daemonic process (a Celery prefork pool child) start the extraction child.

    multiprocessing refuses children of daemonic processes so that they are not orphaned when the
    daemon exits; here the parent always reaps the child before returning, so the guard does not apply.
    """
    config = multiprocessing.current_process()._config  # type: ignore[attr-defined]
    was_daemon = config.pop("daemon", None)
    try:
        yield
    finally:
        if was_daemon is not None:
            config["daemon"] = was_daemon


def _context() -> Any:
    if "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _child_main(conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], memory_mb: int) -> None:
    global _progress_conn
    _progress_conn = conn
    try:
        _limit_address_space(memory_mb)
        outcome: tuple[Any, ...] = ("ok", fn(*args))
    except BaseException as e:  # everything, SystemExit included, goes back to the parent
        outcome = _failure(e)
    try:
        conn.send(outcome)
    except BaseException as e:  # the result could not be pickled (or not within the memory limit)
        try:
            conn.send(_failure(e))
        except BaseException:
            os._exit(70)  # the parent sees EOF and reports an exit without an answer
    finally:
        conn.close()


def _failure(e: BaseException) -> tuple[Any, ...]:
    if _caused_by_memory_error(e):
        return ("memory", f"{type(e).__name__}: {e}")
    if isinstance(e, DocLakeError):
        try:
            # Round-trip here: a subclass whose __init__ cannot be rebuilt from its args must not
            # fail to unpickle in the parent.
            pickle.loads(pickle.dumps(e))
            return ("doclake", e)
        except Exception:
            pass
    return ("error", type(e).__name__, str(e), "".join(traceback.format_exception(e)))


def _caused_by_memory_error(e: BaseException | None) -> bool:
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, MemoryError):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _limit_address_space(memory_mb: int) -> None:
    """RLIMIT_AS = what the child already maps + ``memory_mb``.

    Relative, not absolute: the worker may map gigabytes of virtual memory (torch, the embedding model)
    that the child inherits but never touches; an absolute cap below that would fail every allocation.
    """
    try:
        import resource
    except ImportError:  # not a POSIX platform: only the time bound applies
        return
    current = _vm_size_bytes()
    if current is None:
        return
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + memory_mb * 1024 * 1024
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _vm_size_bytes() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _kill(proc: Any) -> None:
    if proc.is_alive():
        proc.kill()
    proc.join()


def _reap(proc: Any) -> int | None:
    """Wait for the child (killing it if it lingers), release it, and return its exit code."""
    if proc.pid is None:  # start() itself failed
        return None
    proc.join(_EXIT_GRACE_S)
    if proc.exitcode is None:
        _kill(proc)
    exitcode: int | None = proc.exitcode
    proc.close()
    return exitcode


def _died_without_answer(exitcode: int | None, elapsed: float, doc_id: str | None) -> ExtractionError:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return ExtractionLimitExceeded(
            f"the extraction process was killed by {name} after {elapsed:.1f} s "
            "(out of memory or another resource limit)",
            doc_id=doc_id,
        )
    return ExtractionError(f"the extraction process exited with code {exitcode} without a result", doc_id=doc_id)


def _unwrap(outcome: tuple[Any, ...], doc_id: str | None) -> Any:
    kind = outcome[0]
    if kind == "ok":
        return outcome[1]
    if kind == "doclake":
        raise outcome[1]
    if kind == "memory":
        raise ExtractionLimitExceeded(f"extraction ran out of memory ({outcome[1]})", doc_id=doc_id)
    _, type_name, message, remote_tb = outcome
    raise ExtractionError(f"{type_name}: {message}" if message else type_name, doc_id=doc_id) from RemoteTraceback(
        remote_tb
    )
