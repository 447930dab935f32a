"""Worker warm-up hooks: parsers imported before the fork, the model loaded right after it.

Kept out of the task module so importing tasks (e.g. from the API to send them) costs nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.signals import worker_init, worker_process_init

import workers.logs  # noqa: F401  (JSON log lines with task and document ids)

log = logging.getLogger("doclake.worker")

# Set by `doclake worker` from the queues it consumes: an extraction-only worker does not hold the
# model (~400 MB per process), an embedding-only one does not import the parsers.
LOAD_MODEL = True
IMPORT_PARSERS = True


@worker_init.connect
def _import_parsers(**_: Any) -> None:
    if not IMPORT_PARSERS:
        return
    # Imported once in the parent, shared copy-on-write by every forked extraction child.
    from pipelines.extract.extractor import warm_up

    warm_up()


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
