"""Operations: /metrics (Prometheus), /v1/stats and /v1/products (data products and their checks).

Operator routes: with API keys configured they need the admin key, and they count every tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from app.deps import AdminDep, RuntimeDep
from app.schemas import LakeStats, ProductList, ProductPublic
from pipelines.observability import metrics
from pipelines.products.checks import load_latest, run_checks
from pipelines.products.manifests import MANIFESTS
from pipelines.runtime import Runtime
from pipelines.serve.stats import collect_stats

__all__ = ["router"]

router = APIRouter(tags=["operations"])


def _queue_depth(request: Request, rt: Runtime) -> Callable[[], dict[str, int]]:
    def depth() -> dict[str, int]:
        from workers.queues import queue_depth

        app = getattr(request.app.state, "celery", None)
        if app is None:
            from workers.celery_app import make_celery

            # Built from this runtime's settings (not the module-level app) so the broker is this data root's.
            app = request.app.state.celery = make_celery(rt.settings)
        return queue_depth(app)

    return depth


@router.get("/metrics", response_class=Response, summary="Prometheus metrics (text exposition format)")
async def metrics_route(request: Request, rt: RuntimeDep, _: AdminDep) -> Response:
    collector = metrics.LakeCollector(lambda: collect_stats(rt), queue_depth=_queue_depth(request, rt))
    body = await run_in_threadpool(metrics.render, collector)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/stats", response_model=LakeStats, summary="Documents per status, last ingestion, index size")
def stats_route(rt: RuntimeDep, _: AdminDep) -> LakeStats:
    return collect_stats(rt)


@router.get("/v1/products", response_model=ProductList, summary="Data product manifests with their latest checks")
def products_route(
    rt: RuntimeDep,
    _: AdminDep,
    evaluate: Annotated[bool, Query(description="Evaluate every check now instead of serving the last run.")] = False,
) -> ProductList:
    reports = None if evaluate else load_latest(rt)
    if reports is None:
        reports = run_checks(rt)
    by_name = {r.product: r for r in reports}
    products = [ProductPublic(manifest=m, latest=by_name.get(name)) for name, m in MANIFESTS.items()]
    return ProductList(products=products, ok=all(r.ok for r in reports))
