"""The Delta Lake tables: schemas, the delta-rs and Spark engines, and every commit to them."""

__all__: list[str] = []
