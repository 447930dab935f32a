"""doclake's domain: extraction, chunking, embedding, the lakehouse and the vector store.

Imports flow one way (app → workers → pipelines): nothing here imports FastAPI or Celery.
"""

__all__: list[str] = []
