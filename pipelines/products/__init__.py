"""Data products (DESIGN §5): documents (silver) and chunks (gold), each with a manifest and checks."""

from pipelines.products.checks import CheckResult, ProductReport, evaluate, load_latest, run_checks
from pipelines.products.manifests import MANIFESTS, CheckSpec, ProductManifest

__all__ = [
    "MANIFESTS",
    "CheckResult",
    "CheckSpec",
    "ProductManifest",
    "ProductReport",
    "evaluate",
    "load_latest",
    "run_checks",
]
