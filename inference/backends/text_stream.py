"""Helpers for backends that turn generated tokens into text one token at a time.

Execution counts completion tokens as the items a backend yields, so these
helpers keep exactly one item per generated token: a token whose text cannot
be shown yet (half of a multi-byte character, or the start of what may become
a stop sequence) yields "" and its text goes out with a later token.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def storable(text: str) -> str:
    """Text a model produced, safe to store: PostgreSQL holds no NUL character, and a small or
    broken model can emit one; it becomes U+FFFD, as undecodable bytes do."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def stop_list(stop: str | list[str] | None) -> list[str]:
    """A job's `stop` parameter as a list."""
    if stop is None:
        return []
    return [stop] if isinstance(stop, str) else [sequence for sequence in stop if sequence]


class StopSequences:
    """Holds back text that could be the start of a stop sequence; notices when one completes."""

    def __init__(self, stops: Iterable[str]):
        self.stops = [stop for stop in stops if stop]
        self.pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text that is safe to show now; sets `stopped` when a stop sequence appears."""
        if not self.stops:
            return text
        buffered = self.pending + text
        found = [index for index in (buffered.find(stop) for stop in self.stops) if index >= 0]
        if found:
            self.stopped = True
            self.pending = ""
            return buffered[: min(found)]
        held = max((self._partial_match(buffered, stop) for stop in self.stops), default=0)
        self.pending = buffered[len(buffered) - held :] if held else ""
        return buffered[: len(buffered) - held]

    @staticmethod
    def _partial_match(text: str, stop: str) -> int:
        """Length of the longest end of `text` that begins `stop`."""
        for length in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:length]):
                return length
        return 0

    def flush(self) -> str:
        text, self.pending = self.pending, ""
        return text


def apply_stops(pieces: Iterable[str], stops: Iterable[str]) -> Iterator[str]:
    """Yield one item per piece (a token's text, made storable) until a stop sequence, which is not shown.

    Items lag one piece behind, so that text held back at the very end still
    rides on the last token instead of adding an item.
    """
    sequences = StopSequences(stops)
    if not sequences.stops:
        for piece in pieces:
            yield storable(piece)
        return
    previous: str | None = None
    for piece in pieces:
        text = sequences.feed(storable(piece))
        if previous is not None:
            yield previous
        if sequences.stopped:
            yield text
            return
        previous = text
    if previous is not None:
        yield previous + sequences.flush()
