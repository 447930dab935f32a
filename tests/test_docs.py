"""The README stays true: its configuration table and its commands match the code."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.settings import Settings

REPO = Path(__file__).resolve().parents[1]


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"\| `(DOCLAKE_[A-Z0-9_]+)` \|", readme))
    assert documented == {f"DOCLAKE_{name.upper()}" for name in Settings.model_fields}
    for name, field in Settings.model_fields.items():
        assert field.description and field.description in readme, name


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    assert "bash scripts/up.sh" in readme and "bash scripts/test.sh" in readme
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()
