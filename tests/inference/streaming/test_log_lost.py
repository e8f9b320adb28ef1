"""A job's log that Redis lost (it restarted empty): re-seeded by its writer, never begun again below a watcher.

A wipe here deletes the job's keys, as a Redis restarted without persistence has none of them.
"""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from inference import streams
from inference.log_writer import JobLog
from inference.models import Job, JobStatus
from inference.services.events import job_events_follow, visible_text
from inference.services.execution import job_log_reservation
from inference.services.jobs import Usage, job_finish, job_reserve_log, job_start, job_submit, jobs_reap

pytestmark = pytest.mark.django_db

CHAT = {"messages": [{"role": "user", "content": "one two three"}]}
ANSWER = "one two three four"


@pytest.fixture
def job(owner, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)
    job_start(job_id=job.id, attempt=1, worker="w1")  # its `running` opens the log
    return job


def _job_log(job) -> JobLog:
    return JobLog(job.id, 1, lambda canceled: None, job_log_reservation(job))


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
    with _job_log(job) as log:
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
    restart = streams.restart_floor(0) + 1  # above the job's reservation: it had none, its log being short
    assert [(event.seq, event.type) for event in events] == [(restart, "status"), (restart + 1, "delta")]
    assert events[0].data == {"status": "running", "attempt": 1, "restart": True}
    assert events[1].data == {"text": ANSWER}
    assert log.position == restart + 1
    job.refresh_from_db()
    assert job.log_seq_reserved == restart - 1 + streams.RESERVED_EVENTS  # a log lost again starts above this one

    job_finish(
        job_id=job.id,
        attempt=1,
        status=JobStatus.SUCCEEDED,
        usage=Usage(3, 4),
        output_text=ANSWER,
        log_position=log.position,
    )
    lost = [
        streams.Event(1, "status", 1, {"status": "running", "attempt": 1}),
        streams.Event(2, "delta", 1, {"text": "one "}),
        streams.Event(3, "delta", 1, {"text": "two "}),
    ]
    reseeded = streams.read_events(job.id)
    for after in [*range(4), restart, restart + 1]:  # wherever a watcher was, in the log that was lost or the new one
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
    with _job_log(job) as log:
        log.send("delta", {"text": "one two "})
        log.send("delta", {"text": "three four"})
        log.wait_written()

    restart = streams.restart_floor(0) + 1
    assert [event.seq for event in streams.read_events(job.id)] == [1, restart, restart + 1]
    assert visible_text(streams.read_events(job.id, after=1)) == ANSWER


def test_a_done_stays_out_of_a_log_lost_after_the_last_delta_and_watchers_get_the_stored_end(job, owner):
    with _job_log(job) as log:
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


def test_a_writer_reserves_its_logs_positions_before_its_appends_pass_the_reservation(job):
    with _job_log(job) as log:
        for index in range(3 * streams.UNRESERVED_EVENTS):
            log.send("delta", {"text": f"{index} "})
            log.wait_written()
            job.refresh_from_db()
            assert log.position <= job.log_seq_reserved + streams.UNRESERVED_EVENTS, index

    assert 0 < job.log_seq_reserved - log.position <= streams.RESERVED_EVENTS  # one write covers many events


def test_a_job_retried_after_its_log_was_lost_with_its_worker_starts_again_above_the_reservation(job):
    # A power cut: the worker and Redis die together, and nobody knows how far the log went but the database.
    job_reserve_log(job_id=job.id, upto=700)
    streams.append_event(job.id, 1, "delta", {"text": "one two "}, floor=1)
    _wipe(job)
    Job.objects.filter(id=job.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))

    assert jobs_reap().requeued == 1
    restart = streams.restart_floor(700) + 1
    [queued] = streams.read_events(job.id)
    assert (queued.seq, queued.type, queued.data) == (
        restart,
        "status",
        {"status": "queued", "attempt": 2, "restart": True},
    )

    _wipe(job)  # and again before the retry started
    job_start(job_id=job.id, attempt=2, worker="w2")
    [running] = streams.read_events(job.id)
    assert running.seq > restart  # above what watchers of the restarted log may have read
    assert running.data == {"status": "running", "attempt": 2, "restart": True}


def test_a_retry_whose_log_survived_goes_on_where_it_was(job):
    streams.append_event(job.id, 1, "delta", {"text": "one two "}, floor=1)
    before = _log(job)
    Job.objects.filter(id=job.id).update(heartbeat_at=timezone.now() - timedelta(minutes=5))

    jobs_reap()
    job_start(job_id=job.id, attempt=2, worker="w2")

    events = streams.read_events(job.id)
    assert _log(job) == [*before, (before[-1][0] + 1, "status"), (before[-1][0] + 2, "status")]
    assert [event.data for event in events[-2:]] == [
        {"status": "queued", "attempt": 2},
        {"status": "running", "attempt": 2},
    ]
