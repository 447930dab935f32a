"""The FastAPI application factory."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.console import install_console
from app.limits import BodyLimitMiddleware
from app.problems import install_problem_handlers
from app.routes import documents, evals, events, health, jobs, ops, rag, search
from pipelines.runtime import Runtime
from pipelines.settings import Settings, get_settings

__all__ = ["create_app"]

log = logging.getLogger("doclake.api")

Enqueue = Callable[[str, str, int], None]
EnqueueBatch = Callable[[str, dict[str, int]], None]


def _default_enqueue(tenant: str, doc_id: str, version: int) -> None:
    from workers.dispatch import enqueue_processing

    enqueue_processing(tenant, doc_id, version)


def _default_enqueue_batch(tenant: str, versions: dict[str, int]) -> None:
    from workers.dispatch import enqueue_batch

    enqueue_batch(tenant, versions)


def _one_by_one(enqueue: Enqueue) -> EnqueueBatch:
    def send(tenant: str, versions: dict[str, int]) -> None:
        for doc_id, version in versions.items():
            enqueue(tenant, doc_id, version)

    return send


def create_app(
    settings: Settings | None = None, *, enqueue: Enqueue | None = None, enqueue_batch: EnqueueBatch | None = None
) -> FastAPI:
    """Build the API. ``enqueue`` sends a registered version to the workers (default: Celery);
    ``enqueue_batch`` sends a batch upload's versions (default: Celery's batch chain, or ``enqueue``
    for each version when only that was given)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.from_settings(settings)
        if settings.rerank_model is not None:
            # A configured reranker that cannot load stops the start here (RerankerUnavailable says why),
            # rather than failing every rerank query later.
            from pipelines.serve.rerank import load_reranker

            load_reranker(settings.rerank_model)
        app.state.runtime = runtime
        app.state.enqueue = enqueue or _default_enqueue
        app.state.enqueue_batch = enqueue_batch or (_one_by_one(enqueue) if enqueue else _default_enqueue_batch)
        app.state.model_ready = False
        app.state.model_error = None

        def warm() -> None:
            # Loading the model takes seconds: do it off the event loop; /healthz says when done, or why not.
            try:
                runtime.query_embedder().encode_query("warm up")  # the instance search uses
            except Exception as e:
                app.state.model_error = str(e)
                log.error("the query model cannot be loaded: %s", e)
                return
            app.state.model_ready = True
            log.info("query model loaded")

        threading.Thread(target=warm, name="model-warmup", daemon=True).start()
        yield

    app = FastAPI(
        title="doclake",
        version="0.1.0",
        summary="A document lakehouse for retrieval-augmented generation.",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    # Multipart framing adds a little to the file itself: allow 1 MiB on top of the upload limit.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_mb * 1024 * 1024 + 1024 * 1024)
    app.include_router(health.router)
    app.include_router(documents.router)
    app.include_router(search.router)
    app.include_router(events.router)
    app.include_router(rag.router)
    app.include_router(ops.router)
    app.include_router(jobs.router)
    app.include_router(evals.router)
    install_console(app)
    return app
