"""Reading /metrics as a Prometheus scraper does."""

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "scrape-me-1234"  # what the `metrics_token` fixture sets METRICS_TOKEN to


def scrape(client, **headers) -> dict:
    """Every sample of a scrape, by (name, sorted labels)."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
