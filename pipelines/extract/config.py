"""The extraction step's options."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ExtractConfig"]


class ExtractConfig(BaseModel):
    """Bounds on extracting one file; the sandbox enforces the first two, the extractors the rest."""

    model_config = ConfigDict(frozen=True)

    timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Wall-clock bound on extracting one file; the extraction process is killed past it.",
    )
    memory_mb: int = Field(
        default=2048,
        ge=64,
        description=(
            "Address space the extraction process may add on top of what it inherited from its parent "
            "(RLIMIT_AS is set to the parent's current size plus this)."
        ),
    )
    max_chars: int = Field(
        default=20_000_000,
        ge=1,
        description="Most characters of text one document may yield; beyond it extraction fails as too large.",
    )
