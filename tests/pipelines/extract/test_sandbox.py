"""The bounded child process: time and memory limits, error transport, reaping.

The functions run in the child are module-level so they also work where ``fork`` is unavailable.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.errors import EncryptedDocument, ExtractionError, ExtractionLimitExceeded
from pipelines.extract.sandbox import RemoteTraceback, run_bounded


def _add(a: int, b: int) -> int:
    return a + b


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "woke up"


def _allocate(megabytes: int) -> int:
    chunks = [bytearray(1024 * 1024) for _ in range(megabytes)]  # touched, not just reserved
    return len(chunks)


def _raise_doclake() -> None:
    raise EncryptedDocument("locked", doc_id="doc-7")


def _raise_value_error() -> None:
    raise ValueError("boom in the parser")


class _UnpicklableError(Exception):
    def __init__(self, code: int, detail: str) -> None:  # pickle rebuilds with args=(message,) and fails
        super().__init__(f"{code}: {detail}")


def _raise_unpicklable() -> None:
    raise _UnpicklableError(3, "odd constructor")


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _exit_without_answer() -> None:
    os._exit(3)


def _return_unpicklable() -> object:
    return threading.Lock()


def _leave_a_thread_running() -> str:
    threading.Thread(target=time.sleep, args=(60,), daemon=False).start()
    return "done"


def _lineage() -> tuple[int, list[str]]:
    """The child's parent pid, and which of the fork-hazardous (or heavy) libraries are loaded in it."""
    return os.getppid(), sorted(m for m in ("deltalake", "lancedb", "torch") if sys.modules.get(m) is not None)


def _no_children_left() -> None:
    assert multiprocessing.active_children() == []


def test_returns_the_result() -> None:
    assert run_bounded(_add, 2, 3, timeout_s=30, memory_mb=200) == 5
    _no_children_left()


def test_overrunning_child_is_killed_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(ExtractionLimitExceeded, match="longer than 1 s") as info:
        run_bounded(_sleep, 60, timeout_s=1, memory_mb=200, doc_id="slow")
    assert time.monotonic() - started < 5
    assert info.value.doc_id == "slow"
    _no_children_left()


def test_allocating_past_the_memory_bound_is_a_limit_error() -> None:
    started = time.monotonic()
    with pytest.raises(ExtractionLimitExceeded, match="memory") as info:
        run_bounded(_allocate, 2000, timeout_s=60, memory_mb=300, doc_id="hog")
    assert info.value.doc_id == "hog"
    assert time.monotonic() - started < 30
    _no_children_left()


def test_the_memory_bound_is_relative_to_the_parent() -> None:
    # The parent (pytest with the parsers, spaCy and torch imported) maps far more than 150 MB of
    # virtual memory; the child may still allocate 100 MB on top of that.
    assert run_bounded(_allocate, 100, timeout_s=60, memory_mb=250) == 100


def test_doclake_errors_come_back_unchanged() -> None:
    with pytest.raises(EncryptedDocument) as info:
        run_bounded(_raise_doclake, timeout_s=30, memory_mb=200)
    assert info.value.message == "locked"
    assert info.value.doc_id == "doc-7"


def test_other_errors_are_wrapped_with_the_child_traceback() -> None:
    with pytest.raises(ExtractionError) as info:
        run_bounded(_raise_value_error, timeout_s=30, memory_mb=200, doc_id="d")
    assert type(info.value) is ExtractionError
    assert info.value.message == "ValueError: boom in the parser"
    assert info.value.doc_id == "d"
    cause = info.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "_raise_value_error" in str(cause)


def test_exceptions_that_cannot_be_pickled_still_come_back() -> None:
    with pytest.raises(ExtractionError, match="_UnpicklableError: 3: odd constructor"):
        run_bounded(_raise_unpicklable, timeout_s=30, memory_mb=200)


def test_results_that_cannot_be_pickled_are_an_error() -> None:
    with pytest.raises(ExtractionError, match="pickle"):
        run_bounded(_return_unpicklable, timeout_s=30, memory_mb=200)


def test_a_child_killed_by_a_signal_is_a_limit_error() -> None:
    with pytest.raises(ExtractionLimitExceeded, match="SIGKILL"):
        run_bounded(_kill_self, timeout_s=30, memory_mb=200)
    _no_children_left()


def test_a_child_exiting_without_an_answer_is_an_error() -> None:
    with pytest.raises(ExtractionError, match="exited with code 3"):
        run_bounded(_exit_without_answer, timeout_s=30, memory_mb=200)


def test_a_lingering_thread_in_the_child_does_not_hang_the_parent() -> None:
    started = time.monotonic()
    assert run_bounded(_leave_a_thread_running, timeout_s=30, memory_mb=200) == "done"
    assert time.monotonic() - started < 10
    _no_children_left()


def _bounded_add_in_daemon(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        queue.put(run_bounded(_add, 20, 22, timeout_s=30, memory_mb=200))
    except BaseException as e:
        queue.put(repr(e))


def test_works_inside_a_daemonic_process() -> None:
    # Celery's prefork pool runs tasks in daemonic processes, which multiprocessing forbids to have children.
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    daemon = ctx.Process(target=_bounded_add_in_daemon, args=(queue,), daemon=True)
    daemon.start()
    try:
        assert queue.get(timeout=60) == 42
    finally:
        daemon.join(10)
        if daemon.is_alive():
            daemon.kill()
            daemon.join()


def test_the_child_is_forked_from_a_clean_server_not_from_the_caller(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # As in a worker: deltalake and LanceDB have run here, so their runtimes hold threads and locks.
    import deltalake
    import lancedb
    import pyarrow as pa

    lancedb.connect(str(tmp_path / "vectors")).create_table("t", pa.table({"a": [1]}))
    deltalake.write_deltalake(str(tmp_path / "table"), pa.table({"a": [1]}))
    parent, loaded = run_bounded(_lineage, timeout_s=120, memory_mb=200)
    assert parent != os.getpid()  # forked by the server, which never imported them
    assert loaded == []  # nor torch: the server keeps spaCy off it
    # lancedb's at-fork hook warns in a child forked from a process that used it.
    assert "fork support is experimental" not in capfd.readouterr().err
    _no_children_left()


def test_a_forked_process_gets_a_server_of_its_own() -> None:
    # Celery forks its pool processes from a parent that may have started a server: the inherited one
    # is its parent's child, so a pool process starts its own rather than failing to check on it.
    run_bounded(_add, 1, 1, timeout_s=120, memory_mb=200)  # this process's server is running
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_bounded_lineage_in_child, args=(queue,))
    child.start()
    try:
        child_pid, (server_pid, _loaded) = queue.get(timeout=120)
    finally:
        child.join(30)
    assert child.exitcode == 0
    ours = run_bounded(_lineage, timeout_s=120, memory_mb=200)[0]
    assert server_pid not in (ours, child_pid, os.getpid())


def _bounded_lineage_in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put((os.getpid(), run_bounded(_lineage, timeout_s=120, memory_mb=200)))


def _bounded_add() -> int:
    return run_bounded(_add, 40, 2, timeout_s=120, memory_mb=200)


def test_works_in_a_celery_pool_process() -> None:
    # Celery's pool (billiard) makes its own process the current one, with a key that multiprocessing's
    # pickling of the launch data refused ("Pickling an AuthenticationString object is disallowed").
    import billiard

    with billiard.Pool(1) as pool:
        assert pool.apply(_bounded_add) == 42
