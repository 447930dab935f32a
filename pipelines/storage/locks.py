"""Locks that hold across processes: file locks on one host, Redis leases across hosts.

Two kinds, by name:
- ``exclusive(name)``: one holder (a document's writers, the bootstrap, a destructive operation);
- ``shared(name)``: many holders at once, none while an exclusive holder of the same name exists.
  Ordinary commits to a table take it shared, a vacuum with retention 0 or a restore takes it
  exclusive, so the vacuum can never delete a data file that a concurrent commit is about to add.

File locks (the embedded profile) have no shared mode: ``shared`` is exclusive there, which is what
the local lake always did (it turns a storm of conflicting commit retries into a queue).

Redis locks carry a lease that one heartbeat thread per process renews. A holder whose lease lapsed
(a paused process, a partition) has lost the lock: leaving the block raises ``LockLost`` instead of
reporting success, and the version guards of every write still stop a stale writer.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from pipelines.errors import ConfigError, LockLost, LockTimeout
from pipelines.settings import Settings

__all__ = ["FileLocks", "Locks", "NoLocks", "RedisLocks", "locks_for"]

log = logging.getLogger(__name__)


class Locks(Protocol):
    spans_hosts: bool

    def exclusive(self, name: str, *, timeout: float = 600.0) -> AbstractContextManager[None]: ...

    def shared(self, name: str, *, timeout: float = 120.0) -> AbstractContextManager[None]: ...


class FileLocks:
    """File locks under one folder: they hold between the processes of one host only."""

    spans_hosts = False

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @contextmanager
    def exclusive(self, name: str, *, timeout: float = 600.0) -> Iterator[None]:
        path = self.folder / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(path), timeout=timeout):
                yield
        except Timeout as e:
            raise LockTimeout(f"lock {name} still held by another process after {timeout:.0f} s") from e

    def shared(self, name: str, *, timeout: float = 120.0) -> AbstractContextManager[None]:
        return self.exclusive(name, timeout=timeout)


class NoLocks:
    """No locking at all: commits rely on the store's conditional PUT alone.

    For a Lake built by hand on an object store (tools, the commit race tests); services always get
    ``locks_for(settings)``.
    """

    spans_hosts = False

    def exclusive(self, name: str, *, timeout: float = 600.0) -> AbstractContextManager[None]:
        return nullcontext()

    def shared(self, name: str, *, timeout: float = 120.0) -> AbstractContextManager[None]:
        return nullcontext()


# Server time in milliseconds: every host compares leases on Redis's clock, never its own.
_NOW = "local t = redis.call('TIME'); local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

# KEYS: holder, readers. ARGV: token, lease_ms. 0: another holder; 1: ours, readers still inside; 2: ours, alone.
_ACQUIRE_EXCLUSIVE = (
    _NOW
    + """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) == 0 then return 2 end
return 1
"""
)
_ACQUIRE_SHARED = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[2]))
return 1
"""
)
# KEYS: holder, readers. ARGV: token, lease_ms, mode ('x' | 's'). 1: renewed; 0: the lease is gone.
_RENEW = (
    _NOW
    + """
if ARGV[3] == 'x' then
  if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
  return 0
end
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not score or tonumber(score) < now then redis.call('ZREM', KEYS[2], ARGV[1]) return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], 2 * tonumber(ARGV[2]))
return 1
"""
)
_RELEASE = """
if ARGV[2] == 'x' then
  if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
  return 0
end
return redis.call('ZREM', KEYS[2], ARGV[1])
"""


# The longest wait between two tries of a held lock. Table commit lanes change hands every 0.1-0.3 s
# on S3; waiters that slept up to 0.375 s (a 0.25 s cap, jittered) left the lane idle most of the time.
_POLL_CAP_S = 0.05


class _Held:
    __slots__ = ("keys", "lost", "mode", "name", "token")

    def __init__(self, name: str, keys: list[str], token: str, mode: str) -> None:
        self.name, self.keys, self.token, self.mode = name, keys, token, mode
        self.lost = False


class RedisLocks:
    """Leased locks in Redis, renewed every third of the lease by one heartbeat thread per process."""

    spans_hosts = True

    def __init__(self, url: str, *, lease_s: float = 30.0, namespace: str = "doclake:lock:") -> None:
        import redis

        self.url = url
        self.lease_ms = int(lease_s * 1000)
        self.namespace = namespace
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._scripts = {
            name: self._redis.register_script(body)
            for name, body in (
                ("x", _ACQUIRE_EXCLUSIVE),
                ("s", _ACQUIRE_SHARED),
                ("renew", _RENEW),
                ("release", _RELEASE),
            )
        }
        self._held: dict[str, _Held] = {}
        self._mutex = threading.Lock()
        self._beat_pid: int | None = None

    def ping(self) -> None:
        """Raises ConfigError when Redis cannot be reached."""
        try:
            self._redis.ping()
        except Exception as e:
            raise ConfigError(f"cannot reach the lock server {self.url}: {e}") from e

    def _keys(self, name: str) -> list[str]:
        # One hash tag per name keeps both keys on one Redis Cluster slot (scripts need that).
        base = f"{self.namespace}{{{name}}}"
        return [base, base + ":readers"]

    def exclusive(self, name: str, *, timeout: float = 600.0) -> AbstractContextManager[None]:
        return self._hold(name, "x", timeout)

    def shared(self, name: str, *, timeout: float = 120.0) -> AbstractContextManager[None]:
        return self._hold(name, "s", timeout)

    @contextmanager
    def _hold(self, name: str, mode: str, timeout: float) -> Iterator[None]:
        keys, token = self._keys(name), uuid.uuid4().hex
        held = _Held(name, keys, token, mode)
        deadline = time.monotonic() + timeout
        delay = 0.005
        registered = False
        try:
            while True:
                got = int(self._scripts[mode](keys=keys, args=[token, self.lease_ms]))
                if got and not registered:
                    # Ours (an exclusive holder may still wait for readers): keep the lease alive meanwhile.
                    self._register(held)
                    registered = True
                if got == (2 if mode == "x" else 1):
                    break
                if time.monotonic() > deadline:
                    raise LockTimeout(f"lock {name} still held after {timeout:.0f} s")
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, _POLL_CAP_S)
            yield
        except BaseException:
            self._release(held, registered)
            raise
        lost = self._release(held, registered)
        if lost:
            raise LockLost(f"lost the lease on lock {name}: another holder may have run at the same time")

    def _release(self, held: _Held, registered: bool) -> bool:
        with self._mutex:
            self._held.pop(held.token, None)
        if not registered:
            return False
        try:
            released = int(self._scripts["release"](keys=held.keys, args=[held.token, held.mode]))
        except Exception:
            log.warning("releasing lock %s failed; its lease runs out by itself", held.name, exc_info=True)
            return held.lost
        return held.lost or not released

    def _register(self, held: _Held) -> None:
        with self._mutex:
            self._held[held.token] = held
            if self._beat_pid != os.getpid():  # first lock in this process (or in a forked child)
                # A forked child inherits the parent's table of held locks, not its leases: drop them.
                self._held = {held.token: held}
                self._beat_pid = os.getpid()
                threading.Thread(target=self._heartbeat, name="lock-heartbeat", daemon=True).start()

    def _heartbeat(self) -> None:
        pid = os.getpid()
        while self._beat_pid == pid:
            time.sleep(self.lease_ms / 3000)
            with self._mutex:
                held = list(self._held.values())
            for h in held:
                try:
                    ok = int(self._scripts["renew"](keys=h.keys, args=[h.token, self.lease_ms, h.mode]))
                except Exception:
                    log.warning("renewing lock %s failed; retrying", h.name, exc_info=True)
                    continue
                if not ok and not h.lost:
                    h.lost = True
                    log.error("lock %s: lease lost", h.name)


def locks_for(settings: Settings) -> Locks:
    """Redis locks when ``DOCLAKE_LOCK_URL`` is set, else file locks under ``<data>/run/locks``.

    Raises:
        ConfigError: the lock URL is not redis:// (or rediss://), or Redis cannot be reached.
    """
    url = settings.lock_url
    if not url:
        return FileLocks(settings.run_dir / "locks")
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"DOCLAKE_LOCK_URL must be redis://…, got {url!r}")
    locks = RedisLocks(url, lease_s=settings.lock_lease_s)
    locks.ping()
    return locks
