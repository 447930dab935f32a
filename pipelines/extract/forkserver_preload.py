"""Imported by the extraction forkserver when it starts (:func:`pipelines.extract.sandbox.start_server`).

The import is the hook multiprocessing offers (``set_forkserver_preload`` takes module names), so the
warm-up runs at import: every extraction child forked from the server finds the parsers imported and
their first-use caches built.
"""

from __future__ import annotations

import logging
import sys

# spaCy's thinc imports torch when it can, for layers extraction never uses: 500 of the server's 800 MB,
# paid once per extraction process. A None entry makes `import torch` raise ImportError, which thinc
# handles (numpy ops). This process only ever extracts; the embedding model lives in other processes.
sys.modules.setdefault("torch", None)  # type: ignore[arg-type]

from pipelines.extract.extractor import warm_up  # noqa: E402  (after torch is ruled out)

try:
    warm_up()
except Exception:  # the server must start anyway: children then import the parsers themselves, slower
    logging.getLogger("doclake.extract").warning("extraction warm-up failed in the forkserver", exc_info=True)
