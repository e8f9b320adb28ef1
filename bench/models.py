"""Model speed through the whole platform against the same work called directly in this process.

SmolLM2 tokens/s: `job_submit` -> Celery -> a real worker -> the event log -> the `done` event a
watcher reads, against the llamacpp backend run right here with the same prompts, seeds and
parameters. MiniLM embeddings/s the same way, for short sentences and for paragraphs. Runs
alternate (direct, platform, platform, direct, ...) so that drift on a busy machine hits both sides alike;
"ratio" is the median of the paired runs' platform/direct ratios, "totals" the ratio of the
overall rates. Prints a table and saves the figures as JSON under bench/results/.

    .venv/bin/python bench/models.py [--rounds 10] [--max-tokens 256] [--batch 256] [--strict]

It needs PostgreSQL and Redis (`make services`): BENCH_DATABASE_URL (default: database
djinn_bench on the local PostgreSQL, created if missing) and BENCH_REDIS_URL (default: Redis
db 14), under their own key prefix, and starts its own worker on the queue "bench-models".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/djinn_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = "bench-models"  # its own: a worker warms every enabled model routed to its queues
GOALS = {"generation": 0.95, "embedding": 0.90, "embedding-long": 0.90}
PROMPTS = [
    "Write a long story about a dragon who learns to bake bread.",
    "Explain, step by step and in detail, how a bicycle works.",
    "Describe a walk through a busy market in a city by the sea.",
]
# A short sentence (~25 word pieces) and a paragraph (~110): the platform's cost per text is the
# same (one 384-float vector to store and stream), the model's grows with the length.
SENTENCE = "Benchmark sentence {i}: the quick brown fox jumps over the lazy dog near the quiet river bank at dawn."
PARAGRAPH = " ".join(
    [
        "Paragraph {i}: the river wound slowly through the valley, past orchards and stone farmhouses,",
        "while the morning fog lifted from the fields and the first carts rolled toward the market town.",
        "Merchants argued over the price of wool, children chased a dog between the stalls, and an old",
        "clockmaker opened his shutters to the noise, as he had done every morning for forty years.",
    ]
)


def configure_environment() -> dict[str, str]:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX="djinn-bench",
        DATABASE_CONN_MAX_AGE="60",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "INFO"),
    )
    return dict(os.environ)


def ensure_database() -> None:
    """Create the benchmark's PostgreSQL database when it does not exist yet."""
    if not DATABASE_URL.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    base, name = DATABASE_URL.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def register_models():
    """The default SmolLM2 and MiniLM registrations, on the benchmark's own queue."""
    from inference.models import AIModel
    from inference.services.registry import DEFAULT_MODELS

    defaults = {model.slug: model for model in DEFAULT_MODELS}
    registered = {}
    for slug, source in [("bench-smollm2", "smollm2-135m"), ("bench-minilm", "minilm-l6")]:
        default = defaults[source]
        model, _ = AIModel.objects.update_or_create(
            slug=slug,
            defaults={
                "display_name": f"{default.display_name} (benchmark)",
                "task": default.task,
                "backend": default.backend,
                "config": default.config,
                "default_params": default.default_params,
                "max_input_chars": 1_000_000,
                "max_output_tokens": 4096,
                "queue": QUEUE,
                "enabled": True,
            },
        )
        model.full_clean()
        registered[source] = model
    return registered


def wait_until_done(job_id, timeout: float = 600) -> dict:
    """Read the job's event log as a watcher does, until its `done` event; returns that event's data."""
    from inference import streams

    after, deadline = 0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in streams.wait_events(job_id, after=after, timeout_ms=1000):
            after = event.seq
            if event.type == "done":
                return event.data
    raise TimeoutError(f"job {job_id} did not finish in {timeout}s")


def generation_input(round_number: int, max_tokens: int) -> dict:
    prompt = PROMPTS[round_number % len(PROMPTS)]
    return {
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": max_tokens,
        "seed": 1000 + round_number,
    }


def bench_generation(model, user, rounds: int, max_tokens: int) -> dict:
    from inference.backends import build_backend
    from inference.services.jobs import job_submit

    backend = build_backend(model.backend, model.config)
    backend.load()
    list(backend.stream(generation_input(0, 16), lambda: False))  # first-run costs, on both sides
    wait_until_done(job_submit(user=user, model=model, input=generation_input(0, 16)).id)

    runs = []
    identical = True
    for round_number in range(rounds):
        job_input = generation_input(round_number, max_tokens)

        def direct(job_input=job_input):
            return list(backend.stream(job_input, lambda: False))

        def platform(job_input=job_input):
            job = job_submit(user=user, model=model, input=job_input)
            return job, wait_until_done(job.id)

        (tokens, direct_seconds), ((job, done), platform_seconds) = _timed_pair(direct, platform, round_number)
        job.refresh_from_db()
        identical = identical and job.output_text == "".join(tokens)
        runs.append(_pair(len(tokens), direct_seconds, done["usage"]["completion_tokens"], platform_seconds))
    backend.close()
    return _summary("generation", "tokens/s", runs, identical_output=identical)


def bench_embedding(model, user, rounds: int, batch: int, *, name: str, template: str) -> dict:
    from inference.backends import build_backend
    from inference.services.jobs import job_submit

    backend = build_backend(model.backend, model.config)
    backend.load()
    texts = [template.format(i=i) for i in range(batch)]
    backend.embed(texts[:8], normalize=True)
    wait_until_done(job_submit(user=user, model=model, input={"input": texts[:8]}).id)

    runs = []
    for round_number in range(rounds):
        batch_texts = [f"{text} (round {round_number})" for text in texts]

        def direct(batch_texts=batch_texts):
            return backend.embed(batch_texts, normalize=True)

        def platform(batch_texts=batch_texts):
            job = job_submit(user=user, model=model, input={"input": batch_texts, "normalize": True})
            return wait_until_done(job.id)

        (vectors, direct_seconds), (done, platform_seconds) = _timed_pair(direct, platform, round_number)
        runs.append(_pair(len(vectors), direct_seconds, len(done["output"]["embeddings"]), platform_seconds))
    backend.close()
    return _summary(name, "texts/s", runs, batch=batch)


def _timed_pair(direct, platform, round_number: int):
    """Run both sides, each timed; odd rounds start with the platform, so that neither side always
    runs right after the other (a warm cache, a worker still settling its last job)."""

    def timed(side):
        started = time.perf_counter()
        result = side()
        return result, time.perf_counter() - started

    if round_number % 2:
        platform_result = timed(platform)
        return timed(direct), platform_result
    direct_result = timed(direct)
    return direct_result, timed(platform)


def _pair(direct_count: int, direct_seconds: float, platform_count: int, platform_seconds: float) -> dict:
    direct_rate, platform_rate = direct_count / direct_seconds, platform_count / platform_seconds
    return {
        "direct": {"count": direct_count, "seconds": round(direct_seconds, 4), "rate": round(direct_rate, 2)},
        "platform": {"count": platform_count, "seconds": round(platform_seconds, 4), "rate": round(platform_rate, 2)},
        "ratio": round(platform_rate / direct_rate, 4),
    }


def _summary(name: str, unit: str, runs: list[dict], **extra) -> dict:
    """Rates over all runs, and the median of the paired ratios: a burst of load from another
    process on the machine slows one run of one side, and the median does not follow it."""
    rate = {
        side: sum(run[side]["count"] for run in runs) / sum(run[side]["seconds"] for run in runs)
        for side in ("direct", "platform")
    }
    ratio = statistics.median(run["ratio"] for run in runs)
    return {
        "name": name,
        "unit": unit,
        "direct_rate": round(rate["direct"], 2),
        "platform_rate": round(rate["platform"], 2),
        "ratio": round(ratio, 3),
        "ratio_of_totals": round(rate["platform"] / rate["direct"], 3),
        "goal": GOALS[name],
        "met": ratio >= GOALS[name],
        "runs": runs,
        **extra,
    }


def print_table(results: list[dict]) -> None:
    header = (
        f"{'benchmark':<15} {'unit':<9} {'direct':>10} {'platform':>10} {'ratio':>7} {'totals':>7} {'goal':>6}  met"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        print(
            f"{result['name']:<15} {result['unit']:<9} {result['direct_rate']:>10.1f} "
            f"{result['platform_rate']:>10.1f} {result['ratio']:>7.3f} {result['ratio_of_totals']:>7.3f} "
            f"{result['goal']:>6.2f}  "
            f"{'yes' if result['met'] else 'NO'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="measured runs per side and benchmark")
    parser.add_argument("--max-tokens", type=int, default=256, help="tokens per SmolLM2 answer (at most)")
    parser.add_argument("--batch", type=int, default=256, help="texts per embedding job (at most 256)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a ratio misses its goal")
    args = parser.parse_args()

    env = configure_environment()
    ensure_database()
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from tests.support.processes import WorkerProcess, wait_for

    call_command("migrate", verbosity=0)
    models = register_models()
    user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"email": "bench@example.com"})

    worker = WorkerProcess(env, queues=QUEUE).start()
    try:
        wait_for(lambda: "warmed " in worker.log(), timeout=120, what="the worker to warm its models")
        results = [
            bench_generation(models["smollm2-135m"], user, args.rounds, args.max_tokens),
            bench_embedding(models["minilm-l6"], user, args.rounds, args.batch, name="embedding", template=SENTENCE),
            bench_embedding(
                models["minilm-l6"], user, args.rounds, args.batch, name="embedding-long", template=PARAGRAPH
            ),
        ]
    finally:
        worker.stop()

    print_table(results)
    load = [round(value, 2) for value in os.getloadavg()]
    if load[1] > (os.cpu_count() or 1) / 2:
        print(f"note: the machine was busy (load average {load}); other processes slow one side or the other")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"models-{stamp}.json"
    record = {"when": stamp, "cpus": os.cpu_count(), "load_average": load, "results": results}
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"saved {path.relative_to(ROOT)}")
    return 0 if all(result["met"] for result in results) or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
