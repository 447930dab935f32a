"""Celery workers: the app, thin tasks over ``pipelines``, and the stuck-document sweeper."""

__all__: list[str] = []
