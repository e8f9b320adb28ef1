"""The one reader of the environment.

Every setting comes through here. A value that is present but malformed is
refused with a message naming the variable, never guessed at: a typo in
production must stop the process, not quietly flip a default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class EnvReader:
    def __init__(self, environ_map: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ_map is None else environ_map

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def _refuse(self, name: str, value: str, expected: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{name} must be {expected}; got {value!r}.")

    def str(self, name: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> str:
        value = self._raw(name)
        if value is None:
            if default is None:
                raise ImproperlyConfigured(f"{name} is required and is not set.")
            return default
        if choices and value not in choices:
            raise self._refuse(name, value, "one of " + ", ".join(choices))
        return value

    def bool(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise self._refuse(name, value, "true or false")

    def int(self, name: str, default: int, *, min_value: int | None = None, max_value: int | None = None) -> int:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise self._refuse(name, value, "a whole number") from None
        self._check_range(name, value, number, min_value, max_value)
        return number

    def float(
        self, name: str, default: float, *, min_value: float | None = None, max_value: float | None = None
    ) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise self._refuse(name, value, "a number") from None
        if not math.isfinite(number):  # nan passes every range check; inf passes any minimum
            raise self._refuse(name, value, "a finite number")
        self._check_range(name, value, number, min_value, max_value)
        return number

    def _check_range(self, name, value, number, min_value, max_value) -> None:
        if min_value is not None and number < min_value:
            raise self._refuse(name, value, f"at least {min_value}")
        if max_value is not None and number > max_value:
            raise self._refuse(name, value, f"at most {max_value}")

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self._raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def database(self, name: str, default: str) -> dict[str, Any]:
        value = self._raw(name) or default
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
            raise self._refuse(name, value, "a postgres:// or sqlite:// URL")
        try:
            return environ.Env.db_url_config(value)
        except Exception as exc:  # django-environ raises several types for a bad URL
            raise self._refuse(name, value, f"a valid database URL ({exc})") from None

    def redis_url(self, name: str, default: str) -> str:
        value = self._raw(name) or default
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise self._refuse(name, value, "a redis://, rediss:// or unix:// URL")
        return value

    @staticmethod
    def celery_broker_url(redis_url: str) -> str:
        """The broker URL Celery needs for `redis_url` (kombu names unix sockets differently)."""
        if not redis_url.startswith("unix://"):
            return redis_url
        path, _, query = redis_url.removeprefix("unix://").partition("?")
        db = next((part.split("=", 1)[1] for part in query.split("&") if part.startswith("db=")), "0")
        return f"redis+socket://{path}?virtual_host={db}"


def load_dotenv(path) -> None:
    """Read KEY=value lines from `path` into the environment; real variables win."""
    if path.exists():
        environ.Env.read_env(str(path), overwrite=False)


env = EnvReader()
