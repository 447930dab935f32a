"""Delta Lake tables of doclake: schemas, the delta-rs engine, and row-level operations."""

from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, INDEXES, QUARANTINE, RAW_OBJECTS, TABLES, UPDATES, TableSpec

__all__ = [
    "CHUNKS",
    "DOCUMENTS",
    "INDEXES",
    "QUARANTINE",
    "RAW_OBJECTS",
    "TABLES",
    "UPDATES",
    "Lake",
    "TableSpec",
    "sql_quote",
]
