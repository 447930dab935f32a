"""Run one function in a child process bounded in wall time and address space.

Parsers meet hostile input (decompression bombs, recursive object graphs, files that make a parser
loop): rather than trusting each parser's own guards, extraction runs in a forked child that is killed
when it overruns.

The child is forked from a clean process, multiprocessing's *forkserver*, never from the caller. The caller
is a worker that has used deltalake and LanceDB, whose Rust runtimes hold threads and locks a fork copies
mid-operation: lancedb warns at every such fork that a deadlock remains possible, and deltalake was seen to
panic in a child forked after use. The forkserver is started once per process (:func:`start_server`) and
warms the parsers there (:mod:`pipelines.extract.forkserver_preload`); each child forked from it shares
them copy-on-write instead of paying seconds of imports again. Measured per file against forking the
worker itself: 30 ms median instead of 59 (a smaller process to fork; docs/benchmarks.md, "Issue 20:
extraction without fork hazards").
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from pipelines.errors import DocLakeError, ExtractionError, ExtractionLimitExceeded

__all__ = ["RemoteTraceback", "heartbeat", "run_bounded", "start_server"]

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
    receiver, sender = multiprocessing.Pipe(duplex=False)
    proc = _process(_child_main, (sender, fn, args, memory_mb))
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


def start_server() -> None:
    """Start this process's extraction server (the forkserver) if it is not running yet.

    Returns at once: the server warms the parsers in the background, and the first bounded call waits for
    that only if it comes first. A worker calls it at start; :func:`run_bounded` calls it every time.
    """
    if not _HAS_FORKSERVER:
        return
    with _state_lock:
        if not _started:
            multiprocessing.get_context("forkserver").set_forkserver_preload(list(_PRELOAD))
            _started.append(os.getpid())
        multiprocessing.forkserver.ensure_running()


# Imported by the server when it starts: its import runs pipelines.extract.extractor.warm_up().
_PRELOAD = ("pipelines.extract.forkserver_preload",)
_HAS_FORKSERVER = "forkserver" in multiprocessing.get_all_start_methods()
_state_lock = threading.Lock()
# The pid that configured the server, once it has (a forked child configures its own).
_started: list[int] = []


def _forget_inherited_forkserver() -> None:
    """In a child forked from a process that started a forkserver (Celery forks its pool processes): start afresh.

    multiprocessing keeps one forkserver per process and checks it with ``waitpid``, which fails in a
    forked child (the server is its parent's child, not its own), so the child needs a server of its own.
    Its copy of the server's keep-alive pipe is closed: the parent's server then lives as long as the parent.
    """
    global _state_lock
    _state_lock = threading.Lock()  # another thread may have held it at the fork
    server: Any = multiprocessing.forkserver._forkserver  # type: ignore[attr-defined]
    if server._forkserver_pid is None:
        return
    with suppress(OSError):
        os.close(server._forkserver_alive_fd)
    server._forkserver_address = None
    server._forkserver_alive_fd = None
    server._forkserver_pid = None
    server._lock = threading.Lock()
    _started.clear()


if _HAS_FORKSERVER:
    os.register_at_fork(after_in_child=_forget_inherited_forkserver)


def _process(target: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    if _HAS_FORKSERVER:
        start_server()
        return _ServerProcess(target=target, args=args, name="doclake-extract", daemon=True)
    return multiprocessing.Process(target=target, args=args, name="doclake-extract", daemon=True)


if _HAS_FORKSERVER:
    import io
    from multiprocessing import context, popen_forkserver, process, reduction, spawn, util

    class _ServerPopen(popen_forkserver.Popen):
        """multiprocessing's forkserver launch, less the re-run of the caller's ``__main__`` in the child.

        A child normally re-runs the parent's main module (the ``doclake`` console script, a bench
        script) before it unpickles its target: for a worker that imported the whole CLI, ~140 ms of
        imports per extracted file, measured. The target here is always importable by its module name.
        Same steps as the stdlib's ``Popen._launch`` (Python 3.11-3.13), with the two main keys dropped and
        the authentication key made picklable.
        """

        def _launch(self, process_obj: Any) -> None:
            prep_data = spawn.get_preparation_data(process_obj._name)
            prep_data.pop("init_main_from_name", None)
            prep_data.pop("init_main_from_path", None)
            # In a Celery pool process the key is billiard's AuthenticationString, which refuses to be
            # pickled outside billiard's own spawning: send multiprocessing's, which allows it here.
            key = process.AuthenticationString(bytes(prep_data["authkey"]))  # type: ignore[attr-defined]
            prep_data["authkey"] = process_obj._config["authkey"] = key
            buf = io.BytesIO()
            context.set_spawning_popen(self)
            try:
                reduction.dump(prep_data, buf)
                reduction.dump(process_obj, buf)
            finally:
                context.set_spawning_popen(None)
            self.sentinel, w = multiprocessing.forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
            # As the stdlib: a duplicate of the data pipe's write end is the child's sentinel of its parent.
            parent_w = os.dup(w)
            self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))  # type: ignore[attr-defined]
            with open(w, "wb", closefd=True) as f:
                f.write(buf.getbuffer())
            self.pid = multiprocessing.forkserver.read_signed(self.sentinel)

    class _ServerProcess(context.ForkServerProcess):
        @staticmethod
        def _Popen(process_obj: Any) -> Any:  # noqa: N802  (the stdlib's name, overridden)
            return _ServerPopen(process_obj)


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
