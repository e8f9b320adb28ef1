"""A transformers text streamer that hands over one item per generated token.

Imported only when a transformers model generates: importing transformers
takes seconds, and most processes never need it.
"""

from __future__ import annotations

from transformers import TextIteratorStreamer


class TokenStreamer(TextIteratorStreamer):
    """Queues each token's new text (maybe "", for half of a character) instead of whole words."""

    def put(self, value) -> None:
        if len(value.shape) > 1:
            value = value[0]
        if self.skip_prompt and self.next_tokens_are_prompt:
            self.next_tokens_are_prompt = False
            return
        for token in value.tolist():
            self.token_cache.append(token)
            text = self.tokenizer.decode(self.token_cache, **self.decode_kwargs)
            if text.endswith("\ufffd"):  # half of a multi-byte character: its text comes with the next token
                self.on_finalized_text("")
                continue
            self.on_finalized_text(text[self.print_len :])
            self.print_len = len(text)
            if text.endswith("\n"):  # text before a newline cannot change: decode less from now on
                self.token_cache, self.print_len = [], 0

    def end(self) -> None:
        self.token_cache, self.print_len = [], 0
        self.next_tokens_are_prompt = True
        self.text_queue.put(self.stop_signal, timeout=self.timeout)  # no empty text item: it would count as a token
