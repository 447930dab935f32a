"""Kombu's filesystem transport with message files that appear whole, and are taken by one consumer.

The embedded profile's broker is a folder. Kombu's own transport creates each message file in that
folder and then writes it, while consumers list the folder and read any file named for their queue
without taking the writer's lock: a consumer that polls between the two reads an empty file, and
its worker dies on a JSONDecodeError with the message already removed (seen with `doclake up`'s
separate extract and embed workers: a document stuck until the sweeper). Here a message is written
under a name no consumer matches and renamed into place (atomic on POSIX), and a consumer claims a
file by renaming it into the processed folder, which only one of several racing consumers can do.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.transport.virtual import Empty
from kombu.utils.json import dumps, loads

__all__ = ["Channel", "Transport"]


class Channel(filesystem.Channel):
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # A leading dot: `_get` matches "<stamp>_<uuid>.<queue>.msg" by what follows the first dot.
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb", buffering=0) as f:
                f.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue: Any, timeout: Any = None) -> Any:
        wanted = f"{queue}.msg"
        processed = self.processed_folder
        os.makedirs(processed, exist_ok=True)
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.startswith(".") or name.partition(".")[2] != wanted:
                continue
            claimed = os.path.join(processed, f"{os.getpid()}-{name}")
            try:
                os.rename(os.path.join(self.data_folder_in, name), claimed)
            except OSError:
                continue  # another consumer claimed it first
            try:
                with open(claimed, "rb") as f:
                    payload = f.read()
                if not self.store_processed:
                    os.remove(claimed)
            except OSError as exc:
                raise ChannelError(f"Cannot read file {claimed!r} from queue.") from exc
            return loads(payload.decode())
        raise Empty()


class Transport(filesystem.Transport):
    Channel = Channel
