"""What a job's error says to the person looking at it.

Some backend errors are written for operators (a model file's path on the
server, the upstream server's reply to our credentials): staff see them as
stored, everyone else a plain sentence. The stored job keeps the full text;
what has no reader in particular (the event log, webhooks) says the sentence.
"""

from __future__ import annotations

# Their messages quote server paths, or what an upstream model server answered us (its account's
# ids, a proxy's error page): for operators, who can act on them.
OPERATOR_ONLY_ERROR_CODES = frozenset(
    {
        "model_unavailable",
        "generation_failed",
        "upstream_auth_failed",
        "upstream_rate_limited",
        "upstream_unavailable",
        "upstream_error",
    }
)
UNAVAILABLE_MESSAGE = (
    "This model cannot answer right now because of a problem on our side; the operators can see the details. "
    "Try again later, or pick another model."
)


def job_error_message(*, code: str, message: str, user=None) -> str:
    """The error message `user` may read for a job that failed with `code` and `message`.

    Without a user, what anyone may read: the event log's watchers, webhook receivers.
    """
    if code in OPERATOR_ONLY_ERROR_CODES and not getattr(user, "is_staff", False):
        return UNAVAILABLE_MESSAGE
    return message
