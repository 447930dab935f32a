"""The ``doclake`` command line.

Heavy imports (torch, the parsers, Celery's worker) happen inside commands, so ``--help`` is instant.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipelines.settings import Settings, get_settings, worker_threads
from pipelines.storage.location import embed_processes

if TYPE_CHECKING:
    from app.client import DoclakeClient
    from app.schemas import DocumentPublic
    from pipelines.ops.housekeeping import HousekeepingReport

__all__ = ["main"]

cli = typer.Typer(name="doclake", help="A document lakehouse for retrieval-augmented generation.", no_args_is_help=True)

log = logging.getLogger("doclake")


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _metrics_dir(run_dir: Path, *, fresh: bool = False) -> None:
    """Point prometheus-client's multiprocess mode at ``run/metrics`` (see pipelines/metrics.py).

    Must run before anything imports prometheus_client: it picks its storage when first imported.
    ``fresh`` empties the folder (the supervisor, before its children start).
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    path = (run_dir / "metrics").resolve()
    if fresh:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


@cli.command()
def up(
    port: Annotated[int | None, typer.Option(help="API port (default DOCLAKE_PORT or 8000).")] = None,
    host: Annotated[str | None, typer.Option(help="API bind address (default 127.0.0.1).")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Run the embedded stack in the foreground: API, Celery workers and housekeeping (as `doclake sweep`)."""
    _setup_logging()
    settings = get_settings()
    port = port or settings.port
    host = host or settings.host
    log.warning(_bind_notice(settings, host))  # fail before starting anything
    _prepare_model_or_exit(settings)
    _check_ocr_or_exit(settings)
    concurrency = concurrency or settings.worker_concurrency
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _metrics_dir(settings.run_dir, fresh=True)
    env = {**os.environ, "DOCLAKE_DATA_DIR": str(settings.data_dir.resolve())}
    me = [sys.executable, "-m", "app.cli"]
    commands = {
        "api": [*me, "serve", "--host", host, "--port", str(port)],
        # Two fleets, as in docker-compose.yml: parsers in one, the model in the other. The embedding
        # process gets every core, so the last big document is not encoded on half of the machine
        # while the other pool process idles, and extraction children are not forked from a process
        # that holds the model.
        "worker-extract": [*me, "worker", "--queues", "extract", "--concurrency", str(concurrency)],
        "worker-embed": [*me, "worker", "--queues", "embed", "--concurrency", str(embed_processes(settings))],
        # The OCR lane: scans and images, one process at a lower priority, so a scan never holds an extraction
        # process a text upload waits for, and takes only the cores embedding and search leave.
        "worker-ocr": [*me, "worker", "--queues", "ocr", "--concurrency", "1", "--nice", str(settings.ocr_nice)],
        # Housekeeping in a process of its own, as the compose "sweeper": it lowers its own priority, so an
        # index build never takes the cores from uploads and search.
        "housekeeping": [*me, "sweep", "--every", str(settings.sweep_interval_s)],
    }
    if not settings.ocr_lane or settings.ocr == "off":
        del commands["worker-ocr"]  # extract workers OCR themselves, or nothing is OCR'd
    if settings.sqs_queue_url:
        commands["s3-events"] = [*me, "s3-events"]
    if settings.stream_enabled:
        # The update stream (Spark, local mode): a third supervised child; its JVM starts in the background.
        commands["stream"] = [*me, "stream"]
    procs: dict[str, subprocess.Popen[bytes]] = {name: _spawn(cmd, env) for name, cmd in commands.items()}
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    log.info("doclake up: API on http://%s:%d, data in %s", host, port, settings.data_dir.resolve())
    restarts: dict[str, list[float]] = {name: [] for name in commands}
    try:
        while not stopping.wait(1.0):
            for name, proc in list(procs.items()):
                if proc.poll() is None:
                    continue
                recent = [t for t in restarts[name] if time.monotonic() - t < 60]
                if len(recent) >= 5 and name in ("stream", "housekeeping"):
                    # Uploads, search and deletes need neither the stream nor housekeeping: keep serving.
                    log.error("%s keeps exiting (code %s); running without it", name, proc.returncode)
                    del procs[name]
                    continue
                if len(recent) >= 5:
                    log.error("%s keeps exiting (code %s); stopping", name, proc.returncode)
                    stopping.set()
                    break
                log.warning("%s exited with %s; restarting", name, proc.returncode)
                restarts[name] = [*recent, time.monotonic()]
                procs[name] = _spawn(commands[name], env)
    finally:
        _stop_in_order(procs)
    failed = any(p.returncode not in (0, -signal.SIGTERM, -signal.SIGINT) for p in procs.values())
    raise typer.Exit(1 if failed and not stopping.is_set() else 0)


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Each child leads its own process group: a terminal's Ctrl-C reaches `up` alone, which stops the
    # children in order. (Before, the stream's JVM got the SIGINT too and died under its Python driver,
    # which printed py4j tracebacks by the thousand.) A group can also be killed whole: a worker's
    # pool processes, the stream's JVM.
    return subprocess.Popen(command, env=env, process_group=0)


# Stop order and each stage's share of the 20 s: what writes to the lake from events first (the
# stream finishes its micro-batch and stops its JVM: ~3 s), then housekeeping and intake, the workers
# (a warm shutdown: running tasks may finish; an idle worker still takes ~7 s to wind its pool down;
# a task cut short by the kill is redelivered, acks are late), the API last.
_STOP_STAGES: tuple[tuple[tuple[str, ...], float], ...] = (
    (("stream",), 7.0),
    (("housekeeping", "s3-events"), 1.0),
    (("worker-extract", "worker-embed"), 9.0),
    (("api",), 2.0),
)


def _stop_in_order(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM each stage's processes, wait its share, then kill what is left of their groups."""
    staged = {name for names, _ in _STOP_STAGES for name in names}
    stages = [*_STOP_STAGES, (tuple(n for n in procs if n not in staged), 1.0)]
    for names, budget in stages:
        running = {n: procs[n] for n in names if n in procs and procs[n].poll() is None}
        if not running:
            continue
        log.info("stopping %s", ", ".join(running))
        for proc in running.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + budget
        for name, proc in running.items():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killed", name, budget)
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
    log.info("doclake up: stopped")


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        # The stream's Python stops its JVM itself on SIGTERM; only a kill goes to the whole group.
        if sig == signal.SIGKILL:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _prepare_model_or_exit(settings: Settings) -> None:
    """Export the active index's ONNX model before any process starts: no upload waits for it, and a
    failed export stops ``up`` with its reason instead of failing documents."""
    from pipelines.embed.prepare import prepare_model
    from pipelines.errors import DocLakeError
    from pipelines.runtime import Runtime

    try:
        config = Runtime.from_settings(settings).embed_config
        exported = prepare_model(config)
    except DocLakeError as e:
        typer.echo(f"doclake: {e}", err=True)
        raise typer.Exit(2) from e
    log.info("embedding backend %s%s", config.backend, f" ({exported})" if exported else "")


def _check_ocr_or_exit(settings: Settings) -> None:
    """Tesseract and every configured language pack must be there before extraction starts: a missing
    pack would otherwise fail each scan at its first page, long after the operator has gone."""
    from pipelines.extract.ocr import OcrUnavailable, check_ocr

    try:
        check_ocr(settings.ocr_config)
    except OcrUnavailable as e:
        typer.echo(f"doclake: {e}", err=True)
        raise typer.Exit(2) from e


@cli.command("prepare-model")
def prepare_model_command(
    backend: Annotated[
        str | None, typer.Option(help="torch, onnx or onnx-int8 (default: what a new lake starts on).")
    ] = None,
) -> None:
    """Export and check the embedding model now (setup runs this), so the first upload does not wait for it."""
    from pipelines.embed.model import EmbedConfig
    from pipelines.embed.prepare import ModelPrepareError, prepare_model

    settings = get_settings()
    chosen = backend or settings.new_lake_embed_backend
    if chosen not in ("torch", "onnx", "onnx-int8"):
        typer.echo(f"doclake: unknown embedding backend {chosen!r} (torch, onnx or onnx-int8)", err=True)
        raise typer.Exit(2)
    config = EmbedConfig(
        model_path=settings.resolved_model_path(),
        model_id=settings.model_id,
        backend=chosen,  # type: ignore[arg-type]  # checked above
        cache_dir=settings.resolved_embed_cache_dir(),
    )
    try:
        exported = prepare_model(config, load=chosen != "torch")  # torch has nothing to export or check
    except ModelPrepareError as e:
        typer.echo(f"doclake: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(f"{chosen} model ready" + (f": {exported}" if exported else ""))


@cli.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
) -> None:
    """Run only the HTTP API."""
    _metrics_dir(get_settings().run_dir)
    import uvicorn

    from app.main import create_app

    _setup_logging()
    settings = get_settings()
    host = host or settings.host
    log.warning(_bind_notice(settings, host))
    uvicorn.run(create_app(settings), host=host, port=port or settings.port, log_level="info")


def _bind_notice(settings: Settings, host: str) -> str:
    from app.auth import ensure_safe_bind
    from pipelines.errors import ConfigError

    try:
        return ensure_safe_bind(settings, host)
    except ConfigError as e:
        typer.echo(f"doclake: {e}", err=True)
        raise typer.Exit(2) from e


@cli.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "extract,embed,ocr",
    nice: Annotated[int, typer.Option(help="Niceness added to the worker and its children (0-19).", min=0, max=19)] = 0,
) -> None:
    """Run a Celery worker consuming the extract, embed and ocr queues (or those given)."""
    _metrics_dir(get_settings().run_dir)
    import workers.signals  # (warm-up hooks)
    from workers.celery_app import EMBED_QUEUE, EXTRACT_QUEUE, OCR_QUEUE, celery_app

    settings = get_settings()
    if nice:
        os.nice(nice)  # before the pool forks: every pool process and extraction child inherits it
    consumed = {q.strip() for q in queues.split(",") if q.strip()}
    concurrency = concurrency or settings.worker_concurrency
    # Read by each pool process when it builds its Runtime: the cores are shared by this worker's
    # processes only (a pure embed worker of one process uses them all).
    os.environ.setdefault("DOCLAKE_TORCH_THREADS", str(worker_threads(os.cpu_count() or 1, concurrency)))
    workers.signals.LOAD_MODEL = EMBED_QUEUE in consumed
    workers.signals.EXTRACTS = bool(consumed & {EXTRACT_QUEUE, OCR_QUEUE})
    if consumed & {EXTRACT_QUEUE, OCR_QUEUE}:
        _check_ocr_or_exit(settings)
    argv = [
        "worker",
        "--loglevel=INFO",
        f"--concurrency={concurrency}",
        f"--queues={queues}",
        f"--hostname=doclake-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    try:
        celery_app.worker_main(argv)
    finally:
        # The pool is joined and the messages settled. What is left is the interpreter's teardown, whose
        # garbage collection over the parsers' and the model's modules took seconds (7 s of a 12 s stop
        # on two busy cores): freeze the heap so that collection skips it; atexit handlers still run.
        import gc

        gc.freeze()


@cli.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (walked recursively).")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until every document is indexed or failed.")] = False,
    metadata: Annotated[str | None, typer.Option(help="JSON object attached to every document.")] = None,
    acl: Annotated[
        list[str] | None,
        typer.Option(
            "--acl",
            help="A principal who may read the uploaded documents (repeatable); none: new documents are readable by"
            " the tenant, new versions keep their acl.",
        ),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait per document with --wait.")] = 900.0,
    batch: Annotated[
        int, typer.Option(min=1, help="Files per batch upload request (files over 8 MB go alone; 1: one by one).")
    ] = 100,
) -> None:
    """Upload documents to a running service (DOCLAKE_URL)."""
    meta = json.loads(metadata) if metadata else None
    files = [p for path in paths for p in (sorted(path.rglob("*")) if path.is_dir() else [path]) if p.is_file()]
    if not files:
        typer.echo("no files found", err=True)
        raise typer.Exit(2)
    from app.ingest_watch import IngestTally, view_for

    accepted: list[tuple[Path, str, int, bool]] = []
    tally = IngestTally(files=len(files), waited=wait)
    view = view_for(len(files), wait=wait)
    try:
        with _client() as client:
            for group in _upload_groups(files, batch):
                for f, outcome in _upload_group(client, group, meta, acl or None):
                    if isinstance(outcome, str):
                        tally.rejected += 1
                        view.uploaded(f, f"rejected  {f}: {outcome}")
                        continue
                    doc_id, version, duplicate = outcome
                    tally.duplicates += duplicate
                    tally.queued += not duplicate
                    accepted.append((f, doc_id, version, duplicate))
                    view.uploaded(f, f"{'unchanged' if duplicate else 'queued':9} {doc_id} v{version} {f}")
            if wait:
                view.start_waiting(len(accepted))
                for f, doc_id, version, duplicate in accepted:
                    # A duplicate is waited for too: the same bytes may still be on their way.
                    doc = client.wait(doc_id, version=version, timeout=timeout)
                    tally.record(f.name, doc, duplicate=duplicate)
                    view.finished(f, doc, tally)
                    for where, child in _wait_attachments(client, doc_id, f.name, timeout):
                        # An attachment fails alone (its e-mail is indexed): reported, not counted in the exit code.
                        tally.attachments[child.status.value] = tally.attachments.get(child.status.value, 0) + 1
                        view.attachment(where, child)
    finally:
        view.close()
    for line in tally.summary():
        typer.echo(line)
    raise typer.Exit(1 if tally.failures else 0)


def _wait_attachments(
    client: DoclakeClient, parent: str, path: str, timeout: float
) -> Iterator[tuple[str, DocumentPublic]]:
    """Wait for the attachments of an uploaded document, at every level: each as ("mail.eml > a.pdf", document).

    An e-mail's or archive's attachments are registered by its extract step, so once it is terminal they
    are all listed; each is then processed as a document of its own.
    """
    pending = [(parent, path)]
    while pending:
        container, where = pending.pop(0)
        children: list[DocumentPublic] = []
        while True:
            page = client.list(parent=container, limit=1000, offset=len(children))
            children += page.documents
            if not page.documents or len(children) >= page.total:
                break
        for child in children:
            doc = client.wait(child.doc_id, version=child.version, timeout=timeout)
            name = f"{where} > {doc.filename or doc.doc_id}"
            yield name, doc
            pending.append((doc.doc_id, name))


_BATCH_BYTES = 8 * 1024 * 1024


def _upload_groups(files: list[Path], size: int) -> list[list[Path]]:
    """Files in upload requests: up to ``size`` small files (8 MB in all) per batch, big files alone."""
    groups: list[list[Path]] = []
    current: list[Path] = []
    current_bytes = 0
    for f in files:
        n = f.stat().st_size
        if size == 1 or n > _BATCH_BYTES:
            groups.append([f])
            continue
        if current and (len(current) >= size or current_bytes + n > _BATCH_BYTES):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(f)
        current_bytes += n
    if current:
        groups.append(current)
    return groups


def _upload_group(
    client: DoclakeClient, group: list[Path], meta: dict[str, Any] | None, acl: list[str] | None
) -> list[tuple[Path, tuple[str, int, bool] | str]]:
    """Each file's (doc_id, version, duplicate), or why it was rejected."""
    from app.client import DoclakeHTTPError, NamedBytes, Source

    if len(group) > 1:
        sources: list[Source | NamedBytes] = [*group]
        try:
            batch = client.upload_many(sources, metadata=meta, acl=acl)
        except DoclakeHTTPError as e:
            typer.echo(f"batch of {len(group)} files refused ({e}); uploading them one by one", err=True)
        else:
            return [
                (group[i.index], i.error if i.error else (i.doc_id or "", i.version or 0, i.duplicate))
                for i in batch.items
            ]
    results: list[tuple[Path, tuple[str, int, bool] | str]] = []
    for f in group:
        try:
            r = client.upload(f, metadata=meta, acl=acl)
        except DoclakeHTTPError as e:
            results.append((f, str(e)))
            continue
        results.append((f, (r.doc_id, r.version, r.duplicate)))
    return results


@cli.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    top_k: Annotated[int, typer.Option("--top-k", help="How many chunks.")] = 5,
    filter: Annotated[
        list[str] | None, typer.Option("--filter", help="key=value metadata filter (JSON value).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Gold Delta version (integer) or ISO time: search gold as then.")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            help="dense (embeddings), keyword (BM25) or hybrid (both, fused); default hybrid (dense on Pinecone).",
        ),
    ] = None,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Rescore with the service's cross-encoder (DOCLAKE_RERANK_MODEL).")
    ] = False,
    mmr: Annotated[
        float | None, typer.Option("--mmr", min=0.0, max=1.0, help="Diversify: MMR λ (1 relevance only, 0.5 balance).")
    ] = None,
    principal: Annotated[
        list[str] | None,
        typer.Option(
            "--principal",
            help="Search as this identity (repeatable, e.g. --principal group:sre --principal user:ana): documents"
            " with an acl are found only when it names one of them.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search a running service."""
    if mode is not None and mode not in ("dense", "keyword", "hybrid"):
        raise typer.BadParameter("--mode must be dense, keyword or hybrid")

    flt = {}
    for item in filter or []:
        key, _, raw = item.partition("=")
        try:
            flt[key] = json.loads(raw)
        except json.JSONDecodeError:
            flt[key] = raw
    with _client() as client:
        when: int | datetime | None = None
        if as_of:
            when = int(as_of) if as_of.isdigit() else datetime.fromisoformat(as_of)
        response = client.search(
            query,
            top_k=top_k,
            filter=flt,
            as_of=when,
            mode=mode,  # type: ignore[arg-type]  # checked above
            rerank=rerank,
            mmr=mmr,
            principals=principal or [],
        )
    if as_json:
        typer.echo(response.model_dump_json(indent=2))
        return
    for i, hit in enumerate(response.results, 1):
        pages = f" p.{hit.page_start}-{hit.page_end}" if hit.page_start else ""
        snippet = " ".join(hit.text.split())[:160]
        typer.echo(f"{i}. [{hit.score:.3f}] {hit.filename or hit.doc_id}{pages}\n   {snippet}")


@cli.command()
def sweep(
    older_than: Annotated[float | None, typer.Option(help="Seconds; default DOCLAKE_STUCK_AFTER_S.")] = None,
    every: Annotated[float | None, typer.Option(help="Keep going every N seconds (the housekeeping service).")] = None,
) -> None:
    """Housekeeping: re-enqueue stuck documents, compact small Delta files, optimize the vector stores."""
    from pipelines.runtime import Runtime
    from workers.sweeper import housekeep_every, housekeeping

    _setup_logging()
    settings = get_settings()
    rt = Runtime.from_settings(settings)
    if every is None:
        _echo_housekeeping(housekeeping(rt, older_than_s=older_than))
        return
    # The service yields: compaction and index builds use what uploads and search leave.
    os.nice(settings.housekeeping_nice)
    housekeep_every(rt, every, threading.Event(), older_than_s=older_than, on_report=_echo_housekeeping)


def _echo_housekeeping(report: HousekeepingReport) -> None:
    typer.echo(f"re-enqueued {report.requeued} documents")
    typer.echo(
        f"compacted {len(report.compacted)} tables ({sum(report.compacted.values())} files removed), "
        f"optimized {len(report.vector_stores)} vector stores"
    )


@cli.command("s3-events")
def s3_events() -> None:
    """Poll DOCLAKE_SQS_QUEUE_URL for S3 object notifications and ingest / delete what they name."""
    from workers.s3events import poll_sqs

    _setup_logging()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    poll_sqs(get_settings(), stopping)


@cli.command()
def stream(
    source: Annotated[
        str | None, typer.Option(help="delta (bronze.document_updates) or kafka (default DOCLAKE_STREAM_SOURCE).")
    ] = None,
) -> None:
    """Run the update stream: apply document change events to silver, gold and the vector store."""
    from pipelines.stream.job import run_stream

    _setup_logging()
    if source not in (None, "delta", "kafka"):
        typer.echo("--source must be delta or kafka", err=True)
        raise typer.Exit(2)
    run_stream(get_settings(), source="kafka" if source == "kafka" else "delta" if source == "delta" else None)


@cli.command()
def schemas() -> None:
    """Print the JSON Schemas of the pipeline contracts."""
    from pydantic import BaseModel

    from pipelines.contracts.documents import ChunkRecord, DocumentRecord, IngestTask, VectorRecord
    from pipelines.contracts.search import SearchHit, SearchQuery
    from pipelines.contracts.updates import DocumentUpdate

    models: list[type[BaseModel]] = [
        DocumentRecord,
        SearchQuery,
        SearchHit,
        ChunkRecord,
        VectorRecord,
        IngestTask,
        DocumentUpdate,
    ]
    typer.echo(json.dumps({m.__name__: m.model_json_schema() for m in models}, indent=2))


@cli.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Documents per status, last ingestion and index size of a running service."""

    with _client() as client:
        stats = client.stats()
    if as_json:
        typer.echo(stats.model_dump_json(indent=2))
        return
    rows = [(f"documents {name}", str(n)) for name, n in stats.documents.items()]
    rows += [
        ("documents total", str(stats.total)),
        ("last ingestion", stats.last_ingested_at.isoformat(timespec="seconds") if stats.last_ingested_at else "-"),
        ("gold chunks", str(stats.chunks)),
        ("vectors", str(stats.vectors)),
        ("index size", f"{stats.index_size_bytes / 1e6:.1f} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    typer.echo(f"{'what':{width}}  value\n{'-' * width}  -----")
    for key, value in rows:
        typer.echo(f"{key:{width}}  {value}")


def _add_subcommands() -> None:
    from app.cli_eval import evals
    from app.cli_index import indexes, reconcile, reindex
    from app.cli_ops import ops
    from app.cli_products import products

    cli.add_typer(products, name="products")
    cli.add_typer(evals, name="eval")
    cli.command()(reindex)
    cli.command()(reconcile)
    cli.command()(indexes)
    cli.add_typer(ops)  # optimize, vacuum, history, restore, purge


_add_subcommands()


def _client() -> DoclakeClient:
    from app.client import DoclakeClient

    settings = get_settings()
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return DoclakeClient(settings.url, api_key=key)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
