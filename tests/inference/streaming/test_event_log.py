"""The event log on real Redis: the attempt fence, and the replay rebuilt once the log has expired."""

import json

import pytest
import redis
from django.conf import settings

from inference import streams
from inference.models import JobStatus
from inference.services.events import job_events_follow, visible_text
from inference.services.jobs import Usage, job_finish, job_start, job_submit

pytestmark = pytest.mark.django_db

CHAT = {"messages": [{"role": "user", "content": "one two three"}]}
ANSWER = "one two three"


@pytest.fixture
def finished_job(owner, echo_model):
    """A job that succeeded with ANSWER, and whose event log has since expired."""
    job = job_submit(user=owner, model="echo", input=CHAT)
    job_start(job_id=job.id, attempt=1, worker="w1")
    job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(3, 3), output_text=ANSWER)
    streams.redis_client().delete(streams.log_key(job.id))
    job.refresh_from_db()
    return job


def _follow(job, after: int) -> list[streams.Event]:
    return list(job_events_follow(job_id=job.id, after=after, poll_ms=20))


def test_a_newer_attempt_fences_the_older_one_out_of_the_log(owner, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)
    streams.append_event(job.id, 1, "delta", {"text": "one "})
    streams.append_event(job.id, 2, "status", {"status": "queued", "attempt": 2})

    with pytest.raises(streams.Superseded):
        streams.append_event(job.id, 1, "delta", {"text": "two "})

    assert streams.append_event(job.id, 2, "delta", {"text": "one "}) == 3
    assert [(event.attempt, event.type) for event in streams.read_events(job.id)] == [
        (1, "delta"),
        (2, "status"),
        (2, "delta"),
    ]


def test_an_expired_log_is_replayed_whole_from_the_stored_job(finished_job):
    events = _follow(finished_job, after=0)

    assert [(event.seq, event.type) for event in events] == [(1, "status"), (2, "delta"), (3, "done")]
    assert events[1].data == {"text": ANSWER}
    assert events[2].data["status"] == JobStatus.SUCCEEDED
    assert events[2].data["usage"] == {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6}
    assert events[2].data["finish_reason"] == "stop"  # 3 tokens of the 500 the echo model may write


def test_a_replayed_answer_that_reached_its_max_tokens_ends_with_finish_reason_length(owner, echo_model):
    job = job_submit(user=owner, model="echo", input={**CHAT, "max_tokens": 2})
    job_start(job_id=job.id, attempt=1, worker="w1")
    job_finish(job_id=job.id, attempt=1, status=JobStatus.SUCCEEDED, usage=Usage(3, 2), output_text="one two")
    streams.redis_client().delete(streams.log_key(job.id))

    done = _follow(job, after=0)[-1]

    assert (done.type, done.data["finish_reason"]) == ("done", "length")


def test_a_watcher_that_saw_only_the_opening_status_gets_the_rest_of_the_rebuilt_log(finished_job):
    events = _follow(finished_job, after=1)

    assert [(event.seq, event.type) for event in events] == [(2, "delta"), (3, "done")]
    assert visible_text(events) == ANSWER


@pytest.mark.parametrize("after", [2, 3, 7, 500])
def test_a_watcher_holding_part_of_an_expired_log_still_ends_with_the_stored_text(finished_job, after):
    held = [streams.Event(after, "delta", 1, {"text": "one t"})]  # whatever it had shown so far

    events = _follow(finished_job, after=after)

    assert [event.seq for event in events] == list(range(after + 1, after + 1 + len(events)))
    assert [event.type for event in events] == ["status", "delta", "done"]
    assert events[0].data["restart"] is True
    assert visible_text(held + events) == ANSWER


def test_a_job_without_text_replays_its_ending_after_any_position(owner, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)
    job_start(job_id=job.id, attempt=1, worker="w1")
    job_finish(job_id=job.id, attempt=1, status=JobStatus.FAILED, usage=Usage(), error_code="boom", error_message="m")
    streams.redis_client().delete(streams.log_key(job.id))

    events = _follow(job, after=4)

    assert [(event.seq, event.type) for event in events] == [(5, "error"), (6, "done")]
    assert events[0].data == {"code": "boom", "message": "m"}
    assert "finish_reason" not in events[1].data  # a failed job's status says why it ended


def _script_exists_calls() -> int:
    stats = streams.redis_client().info("commandstats")
    return stats.get("cmdstat_script|exists", {}).get("calls", 0)


def test_appends_of_many_jobs_take_one_round_trip_and_survive_a_redis_that_forgot_the_script(owner, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)
    other = job_submit(user=owner, model="echo", input=CHAT)
    before = _script_exists_calls()
    replies = streams.append_all_reporting_cancel(
        [(job.id, 1, "delta", {"text": "one "}, 0), (job.id, 1, "delta", {"text": "two "}, 0)]
    )
    assert [streams.appended_reply(job.id, 1, reply) for reply in replies] == [(1, False), (2, False)]
    # redis-py asks SCRIPT EXISTS before every pipeline holding a Script: a round trip more per delta.
    assert _script_exists_calls() == before

    streams.redis_client().script_flush()  # as a restarted Redis: the script is gone
    streams.request_cancel(job.id)
    replies = streams.append_all_reporting_cancel(
        [(job.id, 1, "delta", {"text": "three"}, 2), (other.id, 1, "delta", {"text": "x"}, 0)]
    )

    assert streams.appended_reply(job.id, 1, replies[0]) == (3, True)  # its owner asked it to stop
    assert streams.appended_reply(other.id, 1, replies[1]) == (1, False)
    assert visible_text(streams.read_events(job.id)) == "one two three"
    assert [event.seq for event in streams.read_events(job.id)] == [1, 2, 3]
    assert visible_text(streams.read_events(other.id)) == "x"


def test_a_superseded_attempts_append_is_refused_alone_among_the_others(owner, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)
    other = job_submit(user=owner, model="echo", input=CHAT)
    streams.append_event(job.id, 2, "status", {"status": "running", "attempt": 2})

    replies = streams.append_all_reporting_cancel(
        [
            (other.id, 1, "delta", {"text": "a "}, 0),
            (job.id, 1, "delta", {"text": "stale"}, 0),
            (other.id, 1, "delta", {"text": "b"}, 0),
        ]
    )

    with pytest.raises(streams.Superseded):
        streams.appended_reply(job.id, 1, replies[1])
    assert [streams.appended_reply(other.id, 1, replies[i]) for i in (0, 2)] == [(1, False), (2, False)]
    assert visible_text(streams.read_events(other.id)) == "a b"
    assert [event.type for event in streams.read_events(job.id)] == ["status"]


def test_a_connection_redis_dropped_between_two_batches_is_replaced_before_the_next(owner, echo_model):
    job = job_submit(user=owner, model="echo", input=CHAT)
    streams.append_all_reporting_cancel([(job.id, 1, "delta", {"text": "one "}, 0)])
    pool = streams.redis_client().connection_pool
    connection = pool.get_connection()
    connection.send_command("CLIENT", "ID")
    client_id = connection.read_response()
    pool.release(connection)  # the next batch takes it again: the pool hands out its newest idle one
    with redis.Redis.from_url(settings.REDIS_URL) as killer:
        assert killer.client_kill_filter(_id=client_id) == 1

    replies = streams.append_all_reporting_cancel([(job.id, 1, "delta", {"text": "two"}, 1)])

    assert streams.appended_reply(job.id, 1, replies[0]) == (2, False)
    assert visible_text(streams.read_events(job.id)) == "one two"
    reused = pool.get_connection()
    pool.release(reused)
    assert reused is connection  # the same connection, connected anew


def test_queued_is_announced_only_as_the_logs_first_event_and_its_owner_told_only_then(
    owner, echo_model, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = job_submit(user=owner, model="echo", input=CHAT)  # its `queued` announced at commit
    started = job_submit(user=owner, model="echo", input=CHAT)
    feed = streams.redis_client().xrange(streams.user_feed_key(owner.id))
    told = [json.loads(fields["data"]) for _, fields in feed]
    queued = {"status": "queued", "attempt": 1}

    assert [(event.seq, event.type, event.data) for event in streams.read_events(job.id)] == [(1, "status", queued)]
    assert {"job": str(job.id), **queued} in told

    # A worker that took the message before the `queued` behind it was written has said `running`.
    streams.append_event(started.id, 1, "status", {"status": "running", "attempt": 1})
    feed_before = streams.redis_client().xlen(streams.user_feed_key(owner.id))

    change = {"job": str(started.id), **queued}
    assert not streams.append_first_notifying(started.id, 1, "status", queued, owner_id=owner.id, change=change)
    assert [event.data["status"] for event in streams.read_events(started.id)] == ["running"]
    assert streams.redis_client().xlen(streams.user_feed_key(owner.id)) == feed_before
