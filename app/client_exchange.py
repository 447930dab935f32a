"""How a client call is carried out, without doing any I/O: requests as data, retries, answers parsed.

An :data:`Operation` is a generator that yields the :class:`Request` objects it needs (and
:class:`Sleep` pauses, for polling) and gets each request's parsed answer back. A :class:`Run` turns
it into the two things a transport can do — send one request once, sleep — and decides the retries
in between, so the sync and the async client are thin loops over the same steps and cannot drift
apart in how they retry, parse or fail.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

import httpx
from pydantic import BaseModel, Field

__all__ = [
    "DoclakeHTTPError",
    "Operation",
    "Reply",
    "Request",
    "RetryPolicy",
    "Run",
    "Sleep",
    "Step",
    "request",
]

T = TypeVar("T")


class DoclakeHTTPError(Exception):
    """The API answered with an error; ``problem`` holds its RFC 9457 problem details."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")
        self.status = status
        self.problem = problem


class RetryPolicy(BaseModel):
    max_retries: int = Field(default=5, ge=0, description="Retries after the first attempt.")
    backoff_s: float = Field(default=0.5, gt=0, description="First delay; doubled on every retry.")
    max_backoff_s: float = Field(default=10.0, gt=0, description="Longest single delay.")
    statuses: frozenset[int] = Field(default=frozenset({429, 503}), description="Answers that are retried.")

    def delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("Retry-After", "")
            if retry_after.replace(".", "", 1).isdigit():
                return min(float(retry_after), self.max_backoff_s)
        # Full jitter: clients that failed together do not retry together.
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**attempt))


@dataclass(frozen=True)
class Request(Generic[T]):
    """One HTTP request to the API and how to read its successful answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    kwargs: dict[str, Any] = field(default_factory=dict)  # httpx's request arguments: params, json, files, data
    text: bool = False  # the answer is text (Prometheus exposition), not JSON

    def answer(self, response: httpx.Response) -> T:
        """The parsed answer; an error status raises :class:`DoclakeHTTPError` with the problem details."""
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.text[:200]}
            raise DoclakeHTTPError(response.status_code, problem if isinstance(problem, dict) else {"detail": problem})
        return self.parse(response.text if self.text else response.json())


@dataclass(frozen=True)
class Sleep:
    """Pause before the next step (a poll interval or a retry backoff)."""

    seconds: float


Step: TypeAlias = Request[Any] | Sleep
# What a transport hands back for a step: the response or the connection error for a Request, None for a Sleep.
Reply: TypeAlias = httpx.Response | httpx.ConnectError | None
# A call to the API: yields its steps, receives each Request's parsed answer, returns the result.
Operation: TypeAlias = Generator[Step, Any, T]


def request(call: Request[T]) -> Operation[T]:
    """The operation of one request."""
    answer: T = yield call
    return answer


class Run(Generic[T]):
    """An operation being carried out by a transport, one step at a time.

    The transport calls :meth:`send` with the reply to the previous step (None at first) and does
    the step it gets — send the request once, or sleep — until :meth:`send` returns None; then
    :attr:`result` holds the operation's result. Errors (:class:`DoclakeHTTPError`, a connection
    still refused after the last retry, whatever the operation raises) are raised by :meth:`send`.
    """

    def __init__(self, operation: Operation[T], retry: RetryPolicy) -> None:
        self._steps = _with_retries(operation, retry)
        self.result: T

    def send(self, reply: Reply) -> Step | None:
        try:
            return self._steps.send(reply)
        except StopIteration as done:
            self.result = done.value
            return None


def _with_retries(operation: Operation[T], retry: RetryPolicy) -> Generator[Step, Reply, T]:
    answer: Any = None
    while True:
        try:
            step = operation.send(answer)
        except StopIteration as done:
            result: T = done.value
            return result
        if isinstance(step, Sleep):
            yield step
            answer = None
        else:
            answer = yield from _exchange(step, retry)


def _exchange(call: Request[T], retry: RetryPolicy) -> Generator[Step, Reply, T]:
    """Send ``call`` until it is answered: a 429/503 or a refused connection is retried after a backoff."""
    for attempt in range(retry.max_retries + 1):
        reply = yield call
        last = attempt == retry.max_retries
        if isinstance(reply, httpx.ConnectError):
            if last:
                raise reply
            yield Sleep(retry.delay(attempt, None))
            continue
        assert reply is not None, "a transport answers every request with a response or its connection error"
        if reply.status_code in retry.statuses and not last:
            yield Sleep(retry.delay(attempt, reply))
            continue
        return call.answer(reply)
    raise AssertionError("unreachable")
