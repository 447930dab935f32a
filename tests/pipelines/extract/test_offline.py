"""unstructured runs with no network: no telemetry, no spaCy model download.

See pipelines/extract/offline_nlp.py for the decision and what it changes in element classification.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines.contracts.documents import ElementKind
from pipelines.extract import offline_nlp
from pipelines.extract.extractor import extract_unbounded

REPO = Path(__file__).resolve().parents[3]

# One file per format family that goes through unstructured (and one PDF).
SAMPLES = [
    "txt/unst__fake-text.txt",
    "html/unst__fake-html.html",
    "md/unst__codeblock.md",
    "eml/unst__fake-email.eml",
    "eml/unst__fake-email-attachment.eml",
    "docx/unst__simple.docx",
    "pptx/unst__fake-power-point.pptx",
    "xlsx/unst__vodafone.xlsx",
    "csv/unst__stanley-cups.tsv",
    "pdf/pypdf__pdflatex-4-pages.pdf",
]

_PROBE = textwrap.dedent(
    """
    import json, os, sys
    events = []
    NETWORK = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.sendto",
               "urllib.Request", "http.client.connect")
    def hook(event, args):
        if event in NETWORK:
            events.append([event, repr(args)[:200]])
    sys.addaudithook(hook)
    from pathlib import Path
    from pipelines.extract.extractor import extract_unbounded
    corpus = Path(sys.argv[1])
    chars = {}
    for rel in sys.argv[2:]:
        chars[rel] = len(extract_unbounded((corpus / rel).read_bytes(), doc_id=rel, filename=rel).text)
    print(json.dumps({"events": events, "chars": chars, "env": os.environ.get("DO_NOT_TRACK")}))
    """
)


def test_extraction_makes_no_network_call(corpus: Path) -> None:
    # A fresh interpreter, with the opt-out variables removed, records every network attempt through
    # Python's audit hooks (a real interpreter feature, nothing is replaced).
    env = {k: v for k, v in os.environ.items() if k not in ("DO_NOT_TRACK", "SCARF_NO_ANALYTICS")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(corpus), *SAMPLES],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["events"] == []
    assert all(n > 0 for n in report["chars"].values()), report["chars"]
    assert report["env"] == "1"  # the opt-out is set by the extractor itself


def test_unstructured_uses_the_blank_pipeline_and_cannot_download() -> None:
    offline_nlp.install()
    from unstructured.nlp import tokenize

    nlp = tokenize._get_nlp()
    assert nlp.pipe_names == ["sentencizer"]
    assert nlp.meta["name"] == "pipeline"  # spacy.blank, not a packaged model
    with pytest.raises(RuntimeError, match="disabled"):
        tokenize._install_spacy_model()
    assert tokenize.sent_tokenize("One sentence here. And a second one.") == [
        "One sentence here.",
        "And a second one.",
    ]
    # No tagger: every POS tag is empty, so unstructured's contains_verb() is always False.
    assert {tag for _, tag in tokenize.pos_tag("The cat sat on the mat.")} == {""}


def test_one_sentence_lines_are_text_not_titles(corpus: Path) -> None:
    """What the missing tagger changes, and how the mapping compensates (observed on the corpus)."""
    doc = extract_unbounded((corpus / "txt" / "unst__fake-text.txt").read_bytes(), doc_id="t", filename="t.txt")
    kinds = {e.text: e.kind for e in doc.elements}
    # unstructured calls this line a Title without a POS tagger; it ends like a sentence, so it is text.
    assert kinds["This is a test document to use for unit tests."] is ElementKind.text
    assert kinds["Important points:"] is ElementKind.title
    novel = extract_unbounded(
        (corpus / "txt" / "unst__book-war-and-peace-1p.txt").read_bytes(), doc_id="w", filename="w.txt"
    )
    titles = [e.text for e in novel.elements if e.kind is ElementKind.title]
    assert titles == ["CHAPTER I"]
