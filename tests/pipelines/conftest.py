"""Fixtures for the pipelines tests: one test case per corpus file, and a warmed-up extraction process.

The ``corpus`` fixture itself lives in ``tests/conftest.py``; this finds the same folder at collection time.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CORPUS_ENV = "DOCLAKE_CORPUS"


def corpus_root() -> Path | None:
    """The corpus of real documents: $DOCLAKE_CORPUS, or ``shared/corpus`` next to the repository."""
    configured = os.environ.get(CORPUS_ENV)
    root = Path(configured) if configured else Path(__file__).parents[2] / ".." / "shared" / "corpus"
    root = root.resolve()
    return root if root.is_dir() else None


def _skip_reason() -> str:
    return f"document corpus not found: set {CORPUS_ENV} or place it at ../shared/corpus beside the repo"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every corpus file becomes its own test case, so a failure names the file.
    if "corpus_file" not in metafunc.fixturenames:
        return
    root = corpus_root()
    if root is None:
        metafunc.parametrize("corpus_file", [pytest.param(None, marks=pytest.mark.skip(reason=_skip_reason()))])
        return
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    metafunc.parametrize("corpus_file", files, ids=[p.relative_to(root).as_posix() for p in files])


@pytest.fixture(scope="session")
def warmed_extractors() -> None:
    """Import the parsers once in the test process, as a worker does, so forked children start fast."""
    from pipelines.extract.extractor import warm_up

    warm_up()
