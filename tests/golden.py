"""A tiny golden set for the eval and reindex-gate tests: five one-sentence documents on unrelated
subjects, and one query each that shares (almost) no word with its document, so a model has to
know what the words mean to rank it first."""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.contracts.ids import DEFAULT_TENANT
from pipelines.runtime import Runtime
from tests.steps import process_one, register_one

DOCS = {
    "volcano": "Magma forces its way up through the crust and erupts from the crater as lava, ash and scalding gas.",
    "bread": "Knead the dough for ten minutes, let the yeast leaven it overnight, then bake the loaf until golden.",
    "football": "The striker scored twice after halftime and the club clinched the league title on the last matchday.",
    "python": "Create a virtual environment, install the package with pip and import the module in your script.",
    "whale": "Humpbacks sing long songs while migrating thousands of kilometres between feeding and breeding waters.",
}

QUERIES = {
    "q-volcano": "Which mountains spew molten rock?",
    "q-bread": "homemade baking recipe with flour",
    "q-football": "soccer team wins the championship",
    "q-python": "setting up dependencies for a programming project",
    "q-whale": "ocean mammals communicating with melodies",
}


def ingest(rt: Runtime, tenant: str = DEFAULT_TENANT) -> None:
    """Upload and fully process the five documents (doc ids are the keys of ``DOCS``)."""
    for doc_id, text in DOCS.items():
        reg = register_one(rt, text.encode(), filename=f"{doc_id}.txt", tenant=tenant, doc_id=doc_id)
        outcome = process_one(rt, tenant, reg.doc_id, reg.version)
        assert outcome.state == "done", outcome


def write_beir(folder: Path, *, qrels: str | None = None) -> tuple[Path, Path]:
    """The set as BEIR files (``qrels`` replaces the judgements' text); returns (qrels, queries)."""
    folder.mkdir(parents=True, exist_ok=True)
    qrels_path = folder / "tiny.tsv"
    judged = "".join(f"q-{doc_id}\t{doc_id}\t1\n" for doc_id in DOCS)
    qrels_path.write_text(qrels if qrels is not None else "query-id\tcorpus-id\tscore\n" + judged)
    queries_path = folder / "queries.jsonl"
    queries_path.write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    return qrels_path, queries_path


def random_model(dest: Path, tokenizer_from: Path, *, seed: int = 7) -> Path:
    """A sentence-transformers-loadable BERT with random weights (one layer, 32 dimensions) and the real
    tokenizer: a model whose rankings are noise, to build an index that is measurably worse."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_from))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
    return dest
