"""Delta Lake tables of doclake: schemas, the delta-rs engine, and row-level operations."""

from pipelines.lakehouse.lake import Lake, sql_quote
from pipelines.lakehouse.schemas import CHUNKS, DOCUMENTS, RAW_OBJECTS, TABLES, TableSpec

__all__ = ["CHUNKS", "DOCUMENTS", "RAW_OBJECTS", "TABLES", "Lake", "TableSpec", "sql_quote"]
