"""Twisted parses every POST form body daphne receives, for no one, before Django sees it.

`twisted.web.http.Request.requestReceived` fills `request.args` from a urlencoded or
multipart body. Daphne never reads `args`: it hands the raw body to the ASGI application,
which parses it itself, under Django's upload limits. Every POST's Content-Type went through
the `email` package, JSON included: 2.7 % of daphne's CPU samples under the streaming
benchmark (py-spy), about 0.2 ms a job, though 0.04 ms in a warm loop. A form's body was
copied into `args`, and a body Twisted could not parse as multipart was answered by Twisted
itself: a bare 400 with no error code, never shown to Django or DRF.
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
