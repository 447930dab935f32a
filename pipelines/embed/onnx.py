"""ONNX Runtime backend for the embedder: fp32 export and dynamic int8 quantization, cached on disk.

sentence-transformers' own ``backend="onnx"`` needs optimum, which forces transformers < 4.58 and
sentence-transformers 5.x (the rest of doclake runs on 6.x), so the export is done here directly:
``torch.onnx.export`` of the packaged transformer once, ``quantize_dynamic`` for int8, then plain
onnxruntime + the model's fast tokenizer at run time. The pooling is what the model's sentence-
transformers config says (mean over the attention mask) followed by L2 normalisation, so vectors
match the torch path (tests check cosine ≥ 0.99 for fp32, ≥ 0.97 for int8).

Several worker processes may start at once on an empty cache: the export runs under a file lock
and each file is written to a temporary name and renamed, so no process ever loads half a model.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
from filelock import FileLock

from pipelines.contracts.ids import sha256_hex
from pipelines.embed.tokens import raw_tokenizer
from pipelines.errors import EmbeddingError

__all__ = ["OnnxBackend", "OnnxModel", "export_onnx"]

OnnxBackend = Literal["onnx", "onnx-int8"]

# Bump when the export recipe changes, so old cached files are not reused.
_EXPORT_VERSION = "3"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _cache_key(model_path: Path) -> str:
    weights = model_path / "model.safetensors"
    stamp = f"{weights.stat().st_size}:{weights.stat().st_mtime_ns}" if weights.exists() else ""
    return sha256_hex(f"{model_path.resolve()}\x1f{stamp}\x1f{_EXPORT_VERSION}")[:16]


def _atomic_target(final: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=final.name + ".", suffix=".tmp", dir=final.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; other users' processes may share the cache
    return Path(tmp)


def _export_fp32(model_path: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    # Eager attention exports as plain MatMul/Softmax, the pattern ONNX Runtime's BERT optimizer fuses
    # into its Attention kernel; the default (sdpa) exports a graph it cannot fuse (measured 1.7 times slower).
    model = AutoModel.from_pretrained(str(model_path), attn_implementation="eager")
    model.eval()

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    tmp = _atomic_target(target)
    try:
        with torch.no_grad():
            # The legacy (TorchScript) exporter: works offline and gives dynamic batch/sequence axes.
            torch.onnx.export(
                _Wrapper(model),
                (dummy, dummy, torch.zeros_like(dummy)),
                str(tmp),
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={**{name: axes for name in _INPUTS}, "last_hidden_state": axes},
                opset_version=17,
                dynamo=False,
            )
        _fuse(model_path, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _fuse(model_path: Path, onnx_file: Path) -> None:
    """Fuse attention, LayerNorm and GELU into ONNX Runtime's transformer kernels, in place."""
    from onnxruntime.transformers.optimizer import optimize_model

    config = json.loads((model_path / "config.json").read_text())
    optimized = optimize_model(
        str(onnx_file),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
    )
    optimized.save_model_to_file(str(onnx_file))


def _quantize(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _atomic_target(target)
    try:
        # Per-channel weights of the MatMuls and fused Attention only: per-tensor scales or quantized
        # embedding lookups (the defaults) bent vectors to cosine ≈ 0.90 against fp32; this keeps ≥ 0.98.
        # The fused graph lacks some shape annotations the quantizer wants: they are all float.
        quantize_dynamic(
            str(source),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def export_onnx(model_path: Path, cache_dir: Path, backend: OnnxBackend) -> Path:
    """The cached ``.onnx`` file for ``backend``, exported (and quantized) on first use.

    Raises:
        EmbeddingError: the export or the quantization failed.
    """
    folder = cache_dir / _cache_key(model_path)
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "model.onnx"
    int8 = folder / "model_int8.onnx"
    wanted = int8 if backend == "onnx-int8" else fp32
    if wanted.exists():
        return wanted
    try:
        with FileLock(str(folder / "export.lock"), timeout=900):
            if not fp32.exists():
                _export_fp32(model_path, fp32)
            if backend == "onnx-int8" and not int8.exists():
                _quantize(fp32, int8)
    except EmbeddingError:
        raise
    except Exception as e:
        raise EmbeddingError(f"ONNX export of {model_path} ({backend}) failed: {e}") from e
    return wanted


def _check_pooling(model_path: Path) -> None:
    config = model_path / "1_Pooling" / "config.json"
    if not config.exists():
        return
    pooling = json.loads(config.read_text())
    others = ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    if not pooling.get("pooling_mode_mean_tokens") or any(pooling.get(k) for k in others):
        raise EmbeddingError(f"the ONNX backend supports mean pooling only; {config} asks for another")


def _max_seq_length(model_path: Path, tokenizer: Any) -> int:
    config = model_path / "sentence_bert_config.json"
    if config.exists():
        value = json.loads(config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return int(min(tokenizer.model_max_length, 512))


# Padded tokens per ONNX Runtime call. Measured on 2 cores (int8): 20 chunks of ~250 tokens took 325 ms
# in one batch of 32, 227 ms in batches of 4 and 215 ms in batches of 2; 64 texts of ~30 tokens took
# 115 ms in one batch and 80 ms in batches of 16. Small batches keep the activations in cache; about
# 512 padded tokens is the best of both.
BATCH_TOKENS = 512


def _batches(order: list[int], lengths: list[int], most: int, budget: int) -> list[list[int]]:
    """Cut ``order`` (indices sorted by descending token count) into batches of at most ``most`` texts
    and ``budget`` padded tokens (always at least one text)."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted longest first: a batch is padded to the length of its first text.
        if current and (len(current) >= most or (len(current) + 1) * lengths[current[0]] > budget):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _special_tokens(raw: Any) -> tuple[list[int], list[int]] | None:
    """The ids the tokenizer puts before and after a single text's tokens ([CLS] and [SEP] for BERT),
    or None when its template is not that simple (then token ids are never taken from the caller)."""
    plain = raw.encode("hello world", add_special_tokens=False)
    full = raw.encode("hello world")
    n = len(plain.ids)
    for start in range(len(full.ids) - n + 1):
        if full.ids[start : start + n] == plain.ids:
            if any(full.type_ids):
                return None
            return list(full.ids[:start]), list(full.ids[start + n :])
    return None


def _session(ort: Any, onnx_file: Path, threads: int | None) -> Any:
    """An ONNX Runtime CPU session of ``onnx_file`` with ``threads`` intra-op threads (None: ORT's default)."""
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """An onnxruntime session plus the model's tokenizer; ``encode`` returns unit-length float32 vectors."""

    batch_tokens: int = BATCH_TOKENS

    def __init__(self, model_path: Path, cache_dir: Path, backend: OnnxBackend, *, threads: int | None = None) -> None:
        _check_pooling(model_path)
        onnx_file = export_onnx(model_path, cache_dir, backend)
        try:
            import onnxruntime as ort
            from transformers import AutoTokenizer

            self.session = _session(ort, onnx_file, threads)
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_path))
        except Exception as e:
            raise EmbeddingError(f"cannot load ONNX model {onnx_file}: {e}") from e
        # Many batches are encoded side by side, one core each, on a second session of one intra-op
        # thread: a ~250-token text is too small a job to split across cores (2 cores, int8, one text
        # per run, quiet machine: 58 texts/s with two intra-op threads, 70 with two single-threaded runs
        # at once; 25 vs 47 in a busy moment; vectors identical). One text, e.g. a query, keeps the
        # multi-threaded session and its latency.
        self._onnx_file = onnx_file
        self._lanes = max(1, threads or os.cpu_count() or 1)
        self._bulk: Any = None
        self._pool: ThreadPoolExecutor | None = None
        self._bulk_lock = threading.Lock()
        self._pool_pid = 0
        self.max_seq_length = _max_seq_length(model_path, self.tokenizer)
        self._input_names = {i.name for i in self.session.get_inputs()}
        self._pad_id = int(self.tokenizer.pad_token_id or 0)
        raw = raw_tokenizer(self.tokenizer, max_length=self.max_seq_length)
        if raw is None:
            raise EmbeddingError(f"the ONNX backend needs a fast tokenizer; {model_path} has a slow one")
        self._raw = raw
        self._specials = _special_tokens(raw)
        # Dynamic int8 quantizes activations with one scale per tensor, computed from the whole batch
        # (its other texts and their padding): batched, a chunk's vector moved by up to 0.02 per
        # component with its batch-mates (cosine ~0.97 to itself alone), so the same text got a different
        # vector in a batch upload than alone. One text per call makes int8 vectors a function of the
        # text alone, at the cost of short texts only (~250-token chunks: 222 ms per 20 alone vs 215 ms in
        # pairs; ~30-token texts: 116 ms per 64 vs 80 ms in batches of 16).
        self.most_per_batch = 1 if backend == "onnx-int8" else None
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def encode(
        self, texts: list[str], *, batch_size: int, token_ids: Sequence[list[int] | None] | None = None
    ) -> np.ndarray:
        """Embed ``texts`` in order; batches hold texts of similar token counts, so padding stays small.

        ``token_ids``, when given, holds for each text its token ids without special tokens (what this
        model's tokenizer gives for it, e.g. counted by the chunker) or None; those texts are not tokenized
        again.
        """
        # One tokenizer call for the texts without ids, then batches cut from the texts sorted by their
        # real token count: characters per token vary several-fold between prose, code and tables, so a
        # character-length sort still padded short chunks to long ones.
        known = token_ids if token_ids is not None and self._specials is not None else [None] * len(texts)
        todo = [i for i, k in enumerate(known) if k is None]
        encodings = self._raw.encode_batch([texts[i] for i in todo]) if todo else []
        ids: list[list[int]] = [[] for _ in texts]
        types: list[list[int]] = [[] for _ in texts]
        for i, e in zip(todo, encodings, strict=True):
            ids[i], types[i] = e.ids, e.type_ids
        for i, k in enumerate(known):
            if k is not None:
                ids[i] = self._with_specials(k)
                types[i] = [0] * len(ids[i])
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        most = min(batch_size, self.most_per_batch or batch_size)
        batches = _batches(order, [len(row) for row in ids], most, self.batch_tokens)
        if len(batches) == 1 or self._lanes == 1:
            for idx in batches:
                out[idx] = self._encode_batch(self.session, [ids[i] for i in idx], [types[i] for i in idx])
            return out
        session, pool = self._bulk_lanes()

        def run(idx: list[int]) -> None:
            out[idx] = self._encode_batch(session, [ids[i] for i in idx], [types[i] for i in idx])

        # Longest first (the sort above), so the last jobs to start are the shortest ones.
        for job in [pool.submit(run, idx) for idx in batches]:
            job.result()
        return out

    def _bulk_lanes(self) -> tuple[Any, ThreadPoolExecutor]:
        """The single-threaded session and the pool that runs it on ``_lanes`` cores, made on first use."""
        with self._bulk_lock:
            # A forked child inherits the pool object but not its threads: it makes its own.
            if self._bulk is None or self._pool is None or self._pool_pid != os.getpid():
                import onnxruntime as ort

                self._pool_pid = os.getpid()
                self._bulk = _session(ort, self._onnx_file, 1)
                self._pool = ThreadPoolExecutor(self._lanes, thread_name_prefix="onnx-lane")
            return self._bulk, self._pool

    def _with_specials(self, content: list[int]) -> list[int]:
        """``content`` truncated and wrapped in the special tokens as the tokenizer would (``[CLS] … [SEP]``)."""
        assert self._specials is not None
        head, tail = self._specials
        room = self.max_seq_length - len(head) - len(tail)
        return [*head, *content[:room], *tail]

    def _encode_batch(self, session: Any, ids: list[list[int]], types: list[list[int]]) -> np.ndarray:
        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self._pad_id, dtype=np.int64)
        attention = np.zeros((len(ids), width), dtype=np.int64)
        token_types = np.zeros((len(ids), width), dtype=np.int64)
        for n, row in enumerate(ids):
            input_ids[n, : len(row)] = row
            attention[n, : len(row)] = 1
            token_types[n, : len(row)] = types[n]
        feeds = {"input_ids": input_ids, "attention_mask": attention, "token_type_ids": token_types}
        hidden = session.run(None, {k: v for k, v in feeds.items() if k in self._input_names})[0]
        mask = attention.astype(np.float32)[:, :, None]
        summed = (hidden * mask).sum(axis=1)
        pooled = summed / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: np.ndarray = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return result
