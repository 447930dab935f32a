"""The embedded broker (a folder): every message arrives whole, exactly once, with racing consumers."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from kombu import Connection

from pipelines.settings import Settings
from workers.celery_app import _broker, make_celery
from workers.fs_broker import Channel, Transport


def _channel(root: Path) -> Channel:
    url, options = _broker(Settings(data_dir=root / "data"))
    conn = Connection(url, transport=Transport, transport_options=options)
    channel = conn.channel()
    assert isinstance(channel, Channel)
    return channel


def test_the_app_uses_the_atomic_transport_on_the_filesystem_broker(tmp_path: Path) -> None:
    app = make_celery(Settings(data_dir=tmp_path / "data"))
    with app.connection_for_write() as conn:
        assert isinstance(conn.default_channel, Channel)


def test_messages_arrive_whole_and_once_while_consumers_race_the_writers(tmp_path: Path) -> None:
    producers, per_producer, consumers = 3, 150, 3
    # Big payloads widen the window in which a file exists but is not written yet.
    pad = "x" * 200_000
    received: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def produce(p: int) -> None:
        channel = _channel(tmp_path)
        for i in range(per_producer):
            channel._put("embed", {"n": p * per_producer + i, "pad": pad})

    def consume() -> None:
        channel = _channel(tmp_path)
        while True:
            try:
                received.append(channel._get("embed")["n"])
            except Exception as e:
                if type(e).__name__ != "Empty":
                    errors.append(e)
                    return
                if done.is_set():
                    return

    readers = [threading.Thread(target=consume) for _ in range(consumers)]
    # Writers are processes, as the API and the workers' pool children are.
    writers = [multiprocessing.get_context("fork").Process(target=produce, args=(p,)) for p in range(producers)]
    for w in writers:
        w.start()
    for t in readers:
        t.start()
    for w in writers:
        w.join()
        assert w.exitcode == 0
    done.set()
    for t in readers:
        t.join()
    assert not errors
    assert sorted(received) == list(range(producers * per_producer))
    # Another queue's messages and half-written files are never taken.
    channel = _channel(tmp_path)
    channel._put("extract", {"n": -1})
    (Path(channel.data_folder_in) / ".123_abc.embed.msg.partial").write_bytes(b"")
    try:
        channel._get("embed")
        raise AssertionError("a message of another queue or a partial file was delivered")
    except Exception as e:
        assert type(e).__name__ == "Empty"
    assert channel._get("extract") == {"n": -1}
