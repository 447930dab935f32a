"""Raw objects: the local and S3 stores, and S3 event notifications normalised to ObjectEvent."""

__all__: list[str] = []
