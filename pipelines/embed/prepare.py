"""Getting an embedding backend ready before any document needs it.

The ONNX backends export and quantize the packaged model on first use (tens of seconds on two
cores). Done lazily, the first upload of a new lake would wait for it, and a broken export would
surface as a failed document; ``prepare_model`` runs it at setup and at ``doclake up`` instead, so a
failure is a start-up error that names the fix.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.embed.model import EmbedConfig, Embedder
from pipelines.errors import EmbeddingError

__all__ = ["ModelPrepareError", "prepare_model"]


class ModelPrepareError(EmbeddingError):
    """The configured backend cannot be made ready; the message says how to run without it."""

    def __init__(self, backend: str, cause: Exception) -> None:
        hint = "" if backend == "torch" else " (set DOCLAKE_EMBED_BACKEND=torch on a new lake to run without ONNX)"
        super().__init__(f"the {backend} embedding model cannot be prepared: {cause}{hint}")
        self.backend = backend


def prepare_model(config: EmbedConfig, *, load: bool = False) -> Path | None:
    """Export (and quantize) the ONNX model of ``config`` into its cache; the cached file, or None for torch.

    With ``load``, also open it and embed one text, proving the file works (torch: loads the model).

    Raises:
        ModelPrepareError: the export, the quantization or the trial encode failed.
    """
    try:
        exported: Path | None = None
        if config.backend != "torch":
            from pipelines.embed.onnx import export_onnx

            if config.cache_dir is None:
                raise EmbeddingError("no cache folder for the exported model (DOCLAKE_EMBED_CACHE_DIR)")
            exported = export_onnx(config.model_path, config.cache_dir, config.backend)
        if load:
            Embedder(config).encode(["doclake checks its embedding model"])
        return exported
    except Exception as e:
        raise ModelPrepareError(config.backend, e) from e
