"""Twisted parses every POST form body daphne receives, for no one, before Django sees it.

`twisted.web.http.Request.requestReceived` fills `request.args` from a urlencoded or
multipart body. Daphne never reads `args`: it hands the raw body to the ASGI application,
which parses it itself, under Django's upload limits. The parse cost daphne's event loop
about 0.25 ms of CPU per POST (its Content-Type goes through the `email` package even for
JSON), a copy of the body per form, and a body Twisted could not parse as multipart was
answered by Twisted itself: a bare 400 with no error code, never shown to Django or DRF.
`install()` turns that parse off for daphne's requests.
"""

from __future__ import annotations

import functools


def install() -> None:
    from daphne.http_protocol import WebRequest

    if getattr(WebRequest.__init__, "djinn_form_parsing_off", False):
        return
    original_init = WebRequest.__init__

    @functools.wraps(original_init)
    def init_without_form_parsing(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self._parsePOSTFormSubmission = False

    init_without_form_parsing.djinn_form_parsing_off = True
    WebRequest.__init__ = init_without_form_parsing
