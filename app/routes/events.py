"""/v1/events/s3: MinIO-style bucket-notification webhook (S3 Records shape), authenticated by a bearer token."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Request, status
from pydantic import BaseModel

from app.deps import SettingsDep
from app.schemas import Problem
from pipelines.contracts.ids import DEFAULT_TENANT
from pipelines.objectstore.notifications import parse_notification
from workers.s3events import EventDispatcher

__all__ = ["router"]

router = APIRouter(prefix="/v1/events", tags=["events"])


class EventsAccepted(BaseModel):
    events: int
    dispatched: int


def _dispatcher(request: Request, settings: SettingsDep) -> EventDispatcher:
    dispatcher: EventDispatcher | None = getattr(request.app.state, "s3_dispatcher", None)
    if dispatcher is None:
        dispatcher = EventDispatcher(settings)
        request.app.state.s3_dispatcher = dispatcher
    return dispatcher


@router.post(
    "/s3",
    response_model=EventsAccepted,
    responses={401: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}},
    summary="Receive S3 / MinIO bucket notifications",
)
def s3_webhook(
    request: Request,
    settings: SettingsDep,
    body: Annotated[dict[str, Any], Body(description="An S3 event notification: a Records array.")],
    authorization: Annotated[str | None, Header()] = None,
) -> EventsAccepted:
    if settings.webhook_secret is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the S3 webhook is disabled (DOCLAKE_WEBHOOK_SECRET unset)")
    expected = f"Bearer {settings.webhook_secret.get_secret_value()}"
    if not authorization or not hmac.compare_digest(authorization.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token")
    events = parse_notification(body)
    return EventsAccepted(
        events=len(events), dispatched=_dispatcher(request, settings).dispatch(events, tenant=DEFAULT_TENANT)
    )
