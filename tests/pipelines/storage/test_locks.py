"""Locks: Redis leases across processes (exclusive, shared, lease loss) and the file-lock fallback."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from pathlib import Path

import pytest

from pipelines.errors import ConfigError, LockLost, LockTimeout
from pipelines.settings import Settings
from pipelines.storage.locks import FileLocks, RedisLocks, locks_for

pytestmark = pytest.mark.integration


def _count_inside(url: str, name: str, mode: str, rounds: int, log: str) -> None:
    locks = RedisLocks(url, lease_s=5)
    hold = locks.exclusive if mode == "x" else locks.shared
    for _ in range(rounds):
        with hold(name, timeout=60):
            with open(log, "a") as f:
                f.write(f"in {mode}\n")
            time.sleep(0.01)
            with open(log, "a") as f:
                f.write(f"out {mode}\n")


def _max_overlap(log: Path) -> tuple[int, int]:
    """(most holders at once, most holders at once while an exclusive one was inside)."""
    inside: list[str] = []
    most = most_with_x = 0
    for line in log.read_text().splitlines():
        kind, mode = line.split()
        if kind == "in":
            inside.append(mode)
        else:
            inside.remove(mode)
        most = max(most, len(inside))
        if "x" in inside:
            most_with_x = max(most_with_x, len(inside))
    return most, most_with_x


def test_exclusive_holders_never_overlap_across_processes(redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "log"
    procs = [
        mp.get_context("spawn").Process(target=_count_inside, args=(redis_url, "docs/a", "x", 15, str(log)))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    most, _ = _max_overlap(log)
    assert most == 1
    assert log.read_text().count("in x") == 45


def test_shared_holders_overlap_but_never_with_an_exclusive_one(redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "log"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_count_inside, args=(redis_url, "tables/t", "s", 40, str(log))) for _ in range(3)]
    procs.append(ctx.Process(target=_count_inside, args=(redis_url, "tables/t", "x", 10, str(log))))
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    _, most_with_x = _max_overlap(log)
    assert most_with_x == 1  # a vacuum (exclusive) is alone with the table
    assert log.read_text().count("in x") == 10
    assert log.read_text().count("in s") == 120


def test_a_waiting_exclusive_holder_keeps_new_shared_holders_out(redis_url: str) -> None:
    locks = RedisLocks(redis_url, lease_s=5)
    other = RedisLocks(redis_url, lease_s=5)
    entered = threading.Event()
    with locks.shared("tables/w"):
        waiter = threading.Thread(target=lambda: (other.exclusive("tables/w").__enter__(), entered.set()))
        waiter.start()
        time.sleep(0.3)
        assert not entered.is_set()  # the reader is still inside
        # The writer's intent is registered: a new reader must wait for it (no writer starvation).
        with pytest.raises(LockTimeout), other.shared("tables/w", timeout=0.3):
            pass
    waiter.join(10)
    assert entered.is_set()


def test_a_lapsed_lease_is_a_failure_not_a_silent_success(redis_url: str) -> None:
    import redis

    locks = RedisLocks(redis_url, lease_s=2)
    with pytest.raises(LockLost, match="docs/lost"), locks.exclusive("docs/lost"):
        # Another party takes over (what a lapsed lease lets happen): the holder must learn it.
        client = redis.Redis.from_url(redis_url)
        key = next(k for k in client.keys("doclake:lock:*docs/lost*") if not k.endswith(b":readers"))
        client.set(key, b"someone-else")
        time.sleep(1.2)  # past one heartbeat (a third of the lease)
    # The other holder's lock was not released by the loser.
    assert redis.Redis.from_url(redis_url).get(key) == b"someone-else"


def test_leases_are_renewed_while_the_work_runs(redis_url: str) -> None:
    locks, other = RedisLocks(redis_url, lease_s=2), RedisLocks(redis_url, lease_s=2)
    with locks.exclusive("docs/long"):
        time.sleep(3)  # longer than the lease: the heartbeat keeps it
        with pytest.raises(LockTimeout), other.exclusive("docs/long", timeout=0.2):
            pass
    with other.exclusive("docs/long", timeout=1):
        pass


def test_a_dead_holders_lock_frees_itself_after_its_lease(redis_url: str) -> None:
    ctx = mp.get_context("spawn")
    proc = ctx.Process(target=_hold_forever, args=(redis_url,))
    proc.start()
    locks = RedisLocks(redis_url, lease_s=2)
    time.sleep(3)  # the child holds it, renewing
    with pytest.raises(LockTimeout), locks.exclusive("docs/dead", timeout=0.3):
        pass
    proc.kill()
    proc.join()
    started = time.monotonic()
    with locks.exclusive("docs/dead", timeout=10):
        waited = time.monotonic() - started
    assert waited < 5


def _hold_forever(url: str) -> None:
    with RedisLocks(url, lease_s=2).exclusive("docs/dead"):
        time.sleep(600)


def test_file_locks_time_out_with_a_named_error(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path)
    with locks.exclusive("docs/f"):
        done: list[BaseException] = []

        def other() -> None:
            try:
                with FileLocks(tmp_path).shared("docs/f", timeout=0.2):
                    pass
            except BaseException as e:
                done.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join(5)
    assert isinstance(done[0], LockTimeout)


def test_lock_url_must_be_redis_and_reachable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="redis://"):
        locks_for(Settings(data_dir=tmp_path, lock_url="zookeeper://x"))
    with pytest.raises(ConfigError, match="cannot reach"):
        locks_for(Settings(data_dir=tmp_path, lock_url="redis://127.0.0.1:1/0"))
    assert isinstance(locks_for(Settings(data_dir=tmp_path)), FileLocks)
