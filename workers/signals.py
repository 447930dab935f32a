"""Worker warm-up hooks, run in each pool process after Celery forks it: the extraction server, the model.

Kept out of the task module so importing tasks (e.g. from the API to send them) costs nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.signals import worker_process_init

import workers.logs  # noqa: F401  (JSON log lines with task and document ids)

log = logging.getLogger("doclake.worker")

# Set by `doclake worker` from the queues it consumes: an extraction-only worker does not hold the
# model (~400 MB per process), an embedding-only one does not start an extraction server.
LOAD_MODEL = True
EXTRACTS = True


@worker_process_init.connect
def _start_extraction_server(**_: Any) -> None:
    if not EXTRACTS:
        return
    # Extraction children are forked from a clean server process, never from this one (it uses deltalake
    # and LanceDB, whose runtimes a fork copies mid-operation). Starting it returns at once; the server
    # imports the parsers in the background, and the first document waits for that only if it comes first.
    from pipelines.extract.sandbox import start_server

    try:
        start_server()
    except Exception:
        log.exception("extraction server did not start; the first extraction retries")


@worker_process_init.connect
def _warm_runtime(**_: Any) -> threading.Thread | None:
    """Build this process's runtime now, not in its first task: importing LanceDB and opening the lake took
    1.4 s, which the first document a pool process extracted waited for (2.5 s with the other process busy).
    A process that loads the model builds it there (``_load_model``)."""
    if LOAD_MODEL:
        return None

    def build() -> None:
        from workers.tasks import runtime

        try:
            runtime()
        except Exception:
            log.exception("runtime warm-up failed; the first task builds it")

    thread = threading.Thread(target=build, name="runtime-warmup", daemon=True)
    thread.start()
    return thread


@worker_process_init.connect
def _load_model(**_: Any) -> None:
    if not LOAD_MODEL:
        return

    # Celery kills a child whose init takes more than a few seconds; torch takes longer, so load in a thread.
    def load() -> None:
        from workers.tasks import runtime

        try:
            embedder = runtime().embedder()
            embedder.encode(["warm up"])
            threads = embedder.config.threads
            if embedder.config.backend == "torch":
                import torch  # loaded already by the model

                threads = torch.get_num_threads()
            log.info("worker model loaded (%s, %d threads)", embedder.config.backend, threads or os.cpu_count() or 1)
        except Exception:
            log.exception("model warm-up failed; tasks will retry loading")

    threading.Thread(target=load, name="model-warmup", daemon=True).start()
