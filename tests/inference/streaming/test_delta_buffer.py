"""How tokens become deltas: held only while coalescing can gain something."""

from __future__ import annotations

from inference.streams import DeltaBuffer


class Clock:
    """Seconds set by the test, so that each token arrives exactly when the test says."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def deltas_of(arrivals_ms: list[float], *, window_ms: int = 50, max_tokens: int = 16) -> list[str]:
    """Feed token i at arrivals_ms[i]; returns the deltas sent on arrival, then what flush sends."""
    clock = Clock()
    buffer = DeltaBuffer(max_tokens=max_tokens, max_delay_ms=window_ms, clock=clock)
    start, sent = clock.now, []
    for index, at in enumerate(arrivals_ms):
        clock.now = start + at / 1000
        text = buffer.add(f"t{index} ")
        if text:
            sent.append(text)
    rest = buffer.flush()
    return sent + ([rest] if rest else [])


def test_the_first_token_goes_out_at_once():
    assert deltas_of([0]) == ["t0 "]


def test_a_fast_stream_is_coalesced_into_one_delta_per_window():
    # A token every 12 ms: each is held while the next is due before the window closes.
    sent = deltas_of([i * 12 for i in range(11)])

    assert sent == ["t0 ", "t1 t2 t3 t4 ", "t5 t6 t7 t8 ", "t9 t10 "]


def test_a_stream_slower_than_half_the_window_sends_every_token_as_it_comes():
    # 30 ms apart with a 50 ms window: the next token would come after the window closes,
    # so holding one would delay it without sending any fewer deltas.
    sent = deltas_of([i * 30 for i in range(6)])

    assert sent == [f"t{i} " for i in range(6)]


def test_a_burst_after_a_pause_is_held_again_from_its_second_token():
    sent = deltas_of([0, 400, 402, 404, 406])

    assert sent == ["t0 ", "t1 ", "t2 t3 t4 "]


def test_a_fast_stream_sends_every_max_tokens_whatever_the_window():
    sent = deltas_of([i * 0.1 for i in range(10)], max_tokens=4)

    assert sent == ["t0 ", "t1 t2 t3 t4 ", "t5 t6 t7 t8 ", "t9 "]


def test_held_tokens_are_due_one_window_after_the_last_delta():
    clock = Clock()
    buffer = DeltaBuffer(max_tokens=16, max_delay_ms=50, clock=clock)
    buffer.add("a")
    clock.now += 0.002
    assert buffer.add("b") is None

    clock.now += 0.010
    assert buffer.holding
    assert abs(buffer.due_in() - 0.038) < 1e-9
