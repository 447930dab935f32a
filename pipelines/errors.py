"""The pipeline's exception family.

Every error that can end a document's processing carries the document id and says whether a retry
could help, so the Celery adapters can map it to a retry or to a recorded ``failed`` status without
knowing which step raised it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DocLakeError",
    "DocumentNotFound",
    "EmbeddingError",
    "EncryptedDocument",
    "EvalSetNotFound",
    "ExtractionError",
    "ExtractionLimitExceeded",
    "InvalidEvalSet",
    "InvalidInput",
    "LakeWriteConflict",
    "LockLost",
    "LockTimeout",
    "NoTextFound",
    "RerankerUnavailable",
    "SearchModeUnsupported",
    "StaleVersion",
    "UnsupportedFormat",
    "VectorStoreError",
]


class DocLakeError(Exception):
    """Root of every doclake error.

    Attributes:
        doc_id: the document the error is about, when there is one.
        retryable: True when the same call may succeed later (a conflict, a busy service).
        code: a short stable machine-readable name, used in statuses and problem details.
    """

    retryable: bool = False
    code: str = "error"

    def __init__(self, message: str, *, doc_id: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.doc_id = doc_id
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message

    def describe(self) -> str:
        """One line for a document's ``error`` field: code and message."""
        return f"{self.code}: {self.message}"


class ConfigError(DocLakeError):
    code = "config_error"


class InvalidInput(DocLakeError):
    """A request or event that cannot be accepted as given (bad id, bad metadata, too large)."""

    code = "invalid_input"


class DocumentNotFound(DocLakeError):
    code = "not_found"


class StaleVersion(DocLakeError):
    """A task for a version that is no longer current: it is skipped, not failed."""

    code = "stale_version"


class IndexSwitched(DocLakeError):
    """The active index changed while a step worked for the previous one; the step runs again."""

    code = "index_switched"
    retryable = True


class ExtractionError(DocLakeError):
    """The bytes could not be turned into text."""

    code = "extraction_failed"


class UnsupportedFormat(ExtractionError):
    code = "unsupported_format"


class EncryptedDocument(ExtractionError):
    code = "encrypted"


class NoTextFound(ExtractionError):
    """The file parsed but holds no extractable text (image-only PDF, empty file)."""

    code = "no_text"


class ExtractionLimitExceeded(ExtractionError):
    """The extractor ran past its time or memory bound (decompression bombs, pathological files)."""

    code = "limit_exceeded"


class EmbeddingError(DocLakeError):
    code = "embedding_failed"


class LakeWriteConflict(DocLakeError):
    """A Delta commit lost a race and should be retried."""

    code = "lake_conflict"
    retryable = True


class VectorStoreError(DocLakeError):
    code = "vector_store_error"
    retryable = True


class InvalidEvalSet(InvalidInput):
    """An eval set that cannot be used as given: malformed qrels or queries, judgements of a query that
    is not there, or nothing to evaluate."""

    code = "invalid_eval_set"


class EvalSetNotFound(DocLakeError):
    """No eval set of that name for the tenant in meta.eval_sets (``doclake eval import`` adds one)."""

    code = "eval_set_not_found"


class RerankerUnavailable(InvalidInput):
    """A rerank was asked for, but no cross-encoder is configured or the configured one cannot be loaded."""

    code = "reranker_unavailable"


class SearchModeUnsupported(InvalidInput):
    """The configured vector store cannot serve this search mode (keyword/hybrid on a store without text)."""

    code = "search_mode_unsupported"


class LockTimeout(DocLakeError):
    """A lock stayed held by another process past the wait bound; the work can run again later."""

    code = "lock_timeout"
    retryable = True


class LockLost(DocLakeError):
    """A lock's lease lapsed while it was held (a paused process, a lost Redis connection): the work
    done under it is not trusted as exclusive; it runs again."""

    code = "lock_lost"
    retryable = True
