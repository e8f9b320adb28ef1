"""The API's JSON parser: DRF's, with a size limit checked while reading.

DRF reads the body stream directly, past Django's DATA_UPLOAD_MAX_MEMORY_SIZE
check on `request.body`, so the limit is enforced here (413). JSON is UTF-8
(RFC 8259, section 8.1): a `charset=` naming anything else is refused (415)
before any codec runs, since Python's codecs include zlib, bz2 and rot13.
"""

from __future__ import annotations

import codecs
import json
import re

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from inference.errors import DjinnError


class RequestTooLarge(DjinnError):
    status = 413
    code = "request_too_large"


class UnsupportedCharset(DjinnError):
    status = 415
    code = "unsupported_charset"


def too_large() -> RequestTooLarge:
    return RequestTooLarge(f"The request body is larger than {settings.API_MAX_REQUEST_BYTES} bytes.")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_REQUEST_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise too_large()
        _require_utf8(media_type)
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        _refuse_unstorable_text(data)
        return data


def _require_utf8(media_type: str | None) -> None:
    # The Content-Type itself, not request.encoding: Django drops a charset it cannot look up.
    _, params = parse_header_parameters(media_type or "")
    charset = params.get("charset")
    if charset is None:
        return
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        name = None
    if name != "utf-8":
        raise UnsupportedCharset(f"JSON bodies must be UTF-8; the request names charset={charset[:40]!r}.")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _refuse_unstorable_text(value) -> None:
    """NUL and unpaired surrogates are valid JSON escapes but no database stores them: refuse them here."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _UNSTORABLE.search(item):
                raise InvalidText("Text must not contain NUL characters or unpaired surrogates (\\u0000, \\ud800).")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class InvalidText(DjinnError):
    status = 400
    code = "invalid_text"
