"""Small helpers for API tests that talk HTTP to the real daphne."""

from __future__ import annotations

import httpx

CHAT = {"messages": [{"role": "user", "content": "hello there general kenobi"}]}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def api(base_url: str, key: str | None = None, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=bearer(key) if key else {}, timeout=30, **kwargs)


def assert_error(response: httpx.Response, status: int, code: str, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    error = response.json()["error"]
    assert set(error) == {"type", "code", "message", "param"}
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    assert error["message"]
    return error
