"""Jobs stored before `input_text` existed are given it by their migration, so search finds them too."""

from importlib import import_module

import pytest
from django.apps import apps

from inference.models import AIModel, Job
from inference.services.jobs import job_submit

pytestmark = pytest.mark.django_db

migration = import_module("inference.migrations.0007_job_input_text")


def test_the_migration_fills_the_text_of_every_task(owner, echo_model):
    AIModel.objects.create(slug="emb", display_name="Emb", task="embedding", backend="echo")
    AIModel.objects.create(slug="cls", display_name="Cls", task="classification", backend="echo")
    AIModel.objects.create(slug="cmp", display_name="Cmp", task="completion", backend="echo")
    inputs = {
        "echo": {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]},
        "emb": {"input": ["first text", "second text"]},
        "cls": {"input": "a review", "labels": ["good", "bad"]},
        "cmp": {"prompt": "once upon"},
    }
    jobs = {slug: job_submit(user=owner, model=slug, input=job_input) for slug, job_input in inputs.items()}
    made_at_submit = {slug: Job.objects.get(id=job.id).input_text for slug, job in jobs.items()}
    Job.objects.update(input_text="")  # as the rows were before the column

    migration.fill_input_text(apps, None)

    filled = {slug: Job.objects.get(id=job.id).input_text for slug, job in jobs.items()}
    assert (
        filled
        == made_at_submit
        == {
            "echo": "be brief\nhi there",
            "emb": "first text\nsecond text",
            "cls": "a review\ngood\nbad",
            "cmp": "once upon",
        }
    )
