"""Registering a model in the admin: the backend is picked from those registered, each one's config keys shown."""

import pytest

from inference.models import AIModel
from ops.models import AuditEntry

pytestmark = pytest.mark.django_db

ADD = "/admin/inference/aimodel/add/"


def _registration(**fields) -> dict:
    return {
        "slug": "tiny-gguf",
        "display_name": "Tiny GGUF",
        "task": "chat",
        "backend": "llamacpp",
        "config": '{"path": "/models/tiny.gguf", "n_ctx": 1024}',
        "default_params": "{}",
        "max_input_chars": 4000,
        "max_output_tokens": 256,
        "queue": "default",
        "enabled": "on",
        **fields,
    }


def test_the_form_offers_the_registered_backends_and_each_ones_config_keys(operator_client):
    page = operator_client.get(ADD).content.decode()

    assert '<select name="backend"' in page
    assert '<option value="" selected>---------</option>' in page  # the operator picks one
    for key in ("echo", "llamacpp", "openai", "sentence_transformers", "transformers"):
        assert f'<option value="{key}">{key} — ' in page
    # Read from the backends' own Config models: name, default, meaning.
    assert "<tr><td><code>n_ctx</code></td><td>2048</td><td>Context window in tokens (prompt and answer).</td>" in page
    assert "<tr><td><code>base_url</code></td><td>required</td>" in page


def test_a_registration_is_saved_audited_and_points_at_the_trial(operator_client):
    response = operator_client.post(ADD, _registration(), follow=True)

    model = AIModel.objects.get(slug="tiny-gguf")
    assert (model.backend, model.config) == ("llamacpp", {"path": "/models/tiny.gguf", "n_ctx": 1024})
    assert AuditEntry.objects.filter(action="model.create").exists()
    assert "run “Test this model” on it" in response.content.decode()


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"backend": "no-such-backend"}, "Select a valid choice."),
        ({"backend": ""}, "This field is required."),
        ({"config": '{"n_ctx": "big"}'}, "n_ctx: Input should be a valid integer"),
        ({"task": "embedding"}, "backend &#x27;llamacpp&#x27; cannot serve &#x27;embedding&#x27; models"),
    ],
)
def test_a_registration_that_cannot_work_is_refused_in_words(operator_client, fields, error):
    response = operator_client.post(ADD, _registration(**fields))

    assert response.status_code == 200  # the form again
    assert error in response.content.decode()
    assert not AIModel.objects.filter(slug="tiny-gguf").exists()
    assert not AuditEntry.objects.exists()
