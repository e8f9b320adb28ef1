"""An ASGI HTTP scope for tests that call Django's handler directly, without a server."""

HTTP_SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "root_path": "",
    "query_string": b"",
    "headers": [(b"host", b"testserver")],
    "client": ("127.0.0.1", 40000),
    "server": ("testserver", 80),
}


def http_scope(path: str) -> dict:
    """A GET of `path`."""
    return {**HTTP_SCOPE, "path": path, "raw_path": path.encode()}
