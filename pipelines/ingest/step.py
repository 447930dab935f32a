"""The step contract: a pydantic model holding a step's configuration, with ``run`` over documents.

A step takes document versions of one tenant (doc_id → version), re-reads what it needs from the
lake, and returns each document's result or the error that document hit. It is idempotent: a
version that is no longer current is that document's ``StaleVersion``, work already done is an
``idle`` result, so redelivered or duplicated tasks are harmless. Steps never retry and never
record failures: ``pipelines.ingest.runner`` holds that policy for every adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from pipelines.runtime import Runtime

__all__ = ["Step", "StepResult", "StepResults"]


class StepResult(BaseModel):
    """What a step did for one document."""

    idle: bool = Field(default=False, description="The step found its work already done (a duplicate delivery).")


# Per document: its result, or the error it hit (the runner maps errors to retry / failed / skipped).
StepResults = dict[str, StepResult | Exception]


class Step(BaseModel, ABC):
    """One stage of a document's processing; the model's fields are its configuration."""

    model_config = ConfigDict(frozen=True)

    name: ClassVar[str]

    @abstractmethod
    def run(self, rt: Runtime, tenant: str, versions: dict[str, int]) -> StepResults:
        """Act on these document versions of ``tenant``; one result or error per document."""
