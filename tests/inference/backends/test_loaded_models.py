"""A worker process's loaded backends: an operator's edit never closes a backend under a running job."""

import pytest

from inference import loaded_models
from inference.backends import BackendError
from inference.models import AIModel


@pytest.fixture
def remote_model(db):
    """A model on a remote server (nothing listens: loading only opens an HTTP client)."""
    return AIModel.objects.create(
        slug="remote",
        display_name="Remote",
        task="chat",
        backend="openai",
        config={"base_url": "http://127.0.0.1:9/v1", "model": "m"},
    )


def test_an_edited_model_closes_its_old_backend_only_once_the_other_jobs_have_ended(remote_model):
    model = remote_model
    loaded_models.job_started()  # a job on another thread of this process, generating with the model
    loaded_models.job_started()  # this job
    try:
        old = loaded_models.backend_for(model)
        model.display_name = "Remote (edited)"
        model.save()
        new = loaded_models.backend_for(AIModel.objects.get(pk=model.pk))

        assert new is not old
        assert old._client is not None  # the other job still streams through it
        loaded_models.job_ended()
        assert old._client is not None
    finally:
        loaded_models.job_ended()
        loaded_models._retire(model.pk)

    assert old._client is None


def test_a_backend_replaced_while_no_other_job_runs_is_closed_at_once(remote_model):
    model = remote_model
    loaded_models.job_started()
    try:
        old = loaded_models.backend_for(model)
        model.enabled = False
        model.save()
        with pytest.raises(BackendError, match="disabled"):
            loaded_models.backend_for(AIModel.objects.get(pk=model.pk))
        assert old._client is None
    finally:
        loaded_models.job_ended()
