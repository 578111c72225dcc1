"""Serving online endpoints: the scoring core (no framework), batching, the ASGI shell, the server."""
