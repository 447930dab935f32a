"""doclake's edge: the FastAPI service, the CLI and the client."""

__all__: list[str] = []
