"""A job's log that Redis lost (it restarted empty): re-seeded by its writer, never begun again below a watcher.

A wipe here deletes the job's keys, as a Redis restarted without persistence has none of them.
"""

import json

import pytest

from inference import streams
from inference.log_writer import JobLog
from inference.models import JobStatus
from inference.services.events import job_events_follow, visible_text
from inference.services.jobs import Usage, job_finish, job_start, job_submit

pytestmark = pytest.mark.django_db

CHAT = {"messages": [{"role": "user", "content": "one two three"}]}
ANSWER = "one two three four"


@pytest.fixture
def job(owner, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)
    job_start(job_id=job.id, attempt=1, worker="w1")  # its `running` opens the log
    return job


def _wipe(job) -> None:
    keys = streams.log_key(job.id).removesuffix("log")
    streams.redis_client().delete(*(keys + part for part in ("log", "fence", "seq")))


def _drop_done(job) -> None:
    """As a Redis that came back with what it had saved before the job's `done`."""
    [(entry_id, _)] = streams.redis_client().xrevrange(streams.log_key(job.id), count=1)
    streams.redis_client().xdel(streams.log_key(job.id), entry_id)


def _follow(job, after: int) -> list[streams.Event]:
    return list(job_events_follow(job_id=job.id, after=after, poll_ms=20))


def _log(job) -> list[tuple[int, str]]:
    return [(event.seq, event.type) for event in streams.read_events(job.id)]


def test_an_append_behind_its_writers_floor_is_refused_and_a_reseed_goes_on_above_it(job):
    streams.append_event(job.id, 1, "delta", {"text": "one "}, floor=1)
    streams.append_event(job.id, 1, "delta", {"text": "two "}, floor=2)
    _wipe(job)

    with pytest.raises(streams.LogLost):
        streams.append_event(job.id, 1, "delta", {"text": "three"}, floor=3)
    assert _log(job) == []  # nothing written: a `delta` at 1 would be the wrong text to a watcher at 3

    assert streams.reseed(job.id, 1, "one two three", floor=3) == 5
    assert streams.append_event(job.id, 1, "delta", {"text": " four"}, floor=5) == 6
    events = streams.read_events(job.id)
    assert [(event.seq, event.type, event.data.get("restart")) for event in events] == [
        (4, "status", True),
        (5, "delta", None),
        (6, "delta", None),
    ]
    held = [streams.Event(3, "delta", 1, {"text": "one t"})]  # whatever a watcher at 3 had shown
    assert visible_text(held + events) == visible_text(events) == ANSWER


def test_a_jobs_writer_reseeds_a_log_wiped_mid_stream_with_the_whole_text(job):
    with JobLog(job.id, 1, on_cancel=lambda canceled: None) as log:
        log.send("delta", {"text": "one "})
        log.send("delta", {"text": "two "})
        log.wait_written()
        before = log.position
        _wipe(job)
        log.send("delta", {"text": "three "})  # refused: the log is behind what this attempt wrote
        log.send("delta", {"text": "four"})  # re-seeds it, this delta's text included
        log.wait_written()

    events = streams.read_events(job.id)
    assert before == 3
    assert [(event.seq, event.type) for event in events] == [(4, "status"), (5, "delta")]
    assert events[0].data == {"status": "running", "attempt": 1, "restart": True}
    assert events[1].data == {"text": ANSWER}
    assert log.position == 5

    job_finish(
        job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(3, 4), output_text=ANSWER, log_position=5
    )
    lost = [
        streams.Event(1, "status", 1, {"status": "running", "attempt": 1}),
        streams.Event(2, "delta", 1, {"text": "one "}),
        streams.Event(3, "delta", 1, {"text": "two "}),
    ]
    reseeded = streams.read_events(job.id)
    for after in range(6):  # wherever a watcher was before the end, in the log that was lost or in the new one
        seen = [event for event in (lost if after <= before else reseeded) if event.seq <= after]
        events = _follow(job, after)
        seqs = [event.seq for event in events]
        assert seqs == sorted(set(seqs))
        assert seqs[0] > after
        assert events[-1].type == "done"
        assert visible_text(seen + events) == ANSWER


def test_a_log_that_starts_again_at_one_under_a_writer_is_reseeded_too(job):
    # Wiped before this attempt's first append came back: it could only see its event land at 1.
    _wipe(job)
    with JobLog(job.id, 1, on_cancel=lambda canceled: None) as log:
        log.send("delta", {"text": "one two "})
        log.send("delta", {"text": "three four"})
        log.wait_written()

    assert [event.seq for event in streams.read_events(job.id)] == [1, 2, 3]
    assert visible_text(streams.read_events(job.id, after=1)) == ANSWER


def test_a_done_stays_out_of_a_log_lost_after_the_last_delta_and_watchers_get_the_stored_end(job, owner):
    with JobLog(job.id, 1, on_cancel=lambda canceled: None) as log:
        log.send("delta", {"text": "one two "})
        log.wait_written()
    _wipe(job)

    finish = dict(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(3, 4), output_text=ANSWER)
    job_finish(**finish, log_position=log.position)

    assert _log(job) == []  # a `done` at 1 would tell a watcher at 2 that it had already read the end
    [(_, told)] = streams.redis_client().xrevrange(streams.user_feed_key(owner.id), count=1)
    assert json.loads(told["data"])["status"] == "succeeded"  # its owner's tabs are told all the same
    events = _follow(job, after=2)
    assert [(event.seq, event.type) for event in events] == [(3, "status"), (4, "delta"), (5, "done")]
    assert visible_text([streams.Event(2, "delta", 1, {"text": "one two "}), *events]) == ANSWER


def test_a_finished_jobs_log_that_lacks_its_end_and_part_of_its_text_gets_the_stored_text_again(job):
    # Redis came back with what it had saved, without the answer's last deltas (never written) nor its `done`.
    streams.append_event(job.id, 1, "delta", {"text": "one "}, floor=1)
    job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(3, 4), output_text=ANSWER)
    _drop_done(job)

    events = _follow(job, after=2)

    assert [(event.seq, event.type) for event in events] == [(3, "status"), (4, "delta"), (5, "done")]
    assert events[0].data["restart"] is True
    assert visible_text([streams.Event(2, "delta", 1, {"text": "one "}), *events]) == ANSWER


def test_a_finished_jobs_log_that_lacks_only_its_end_gets_only_the_end(job):
    streams.append_event(job.id, 1, "delta", {"text": ANSWER}, floor=1)
    job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(3, 4), output_text=ANSWER)
    _drop_done(job)

    assert [(event.seq, event.type) for event in _follow(job, after=2)] == [(3, "done")]
