import json

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from inference.errors import DjinnError
from inference.models import JobClient, JobStatus, Task
from inference.selectors import ai_model_get_runnable
from inference.services.events import job_events_follow
from inference.services.jobs import job_submit


class Command(BaseCommand):
    help = "Submit a job to MODEL, print its output as it is produced, and exit non-zero if it fails."

    def add_arguments(self, parser):
        parser.add_argument("model", help="The model's slug, e.g. echo.")
        parser.add_argument("prompt", help="The text to send; for classification, the text to label.")
        parser.add_argument("--user", help="Run as this user (default: the first superuser).")
        parser.add_argument("--labels", default="", help="Comma-separated labels, for classification models.")
        parser.add_argument("--max-tokens", type=int, help="The most tokens to generate.")

    def handle(self, *args, model: str, prompt: str, user: str | None, labels: str, max_tokens: int | None, **opts):
        owner = self._owner(user)
        try:
            ai_model = ai_model_get_runnable(slug=model)
            job = job_submit(
                user=owner,
                model=ai_model,
                input=self._input(ai_model.task, prompt, labels, max_tokens),
                client=JobClient.CLI,
            )
        except DjinnError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"job {job.id} queued on {ai_model.slug}")
        status, error, printed = None, "", False
        for event in job_events_follow(job_id=job.id):
            # A retry continues the answer where it stopped; only a restart replaces what was printed.
            if event.type == "status" and event.data.get("restart"):
                if printed:
                    self.stdout.write("")  # ends the abandoned answer's line
                    printed = False
                self.stderr.write(f"[attempt {event.attempt} came out differently; the answer starts over]")
            elif event.type == "delta":
                self.stdout.write(event.data["text"], ending="")
                self.stdout.flush()
                printed = True
            elif event.type == "error":
                error = f"{event.data['code']}: {event.data['message']}"
            elif event.type == "done":
                status = event.data["status"]
                if "output" in event.data:
                    self.stdout.write(json.dumps(event.data["output"], indent=2))
                usage = event.data.get("usage", {})
                self.stdout.write("")
                self.stderr.write(
                    f"{status}; {usage.get('prompt_tokens', 0)} prompt + "
                    f"{usage.get('completion_tokens', 0)} completion tokens"
                )
        if status != JobStatus.SUCCEEDED:
            raise CommandError(f"job {job.id} {status}" + (f": {error}" if error else ""))

    def _owner(self, username: str | None) -> User:
        if username:
            owner = User.objects.filter(username=username).first()
            if owner is None:
                raise CommandError(f"No user named {username!r}.")
            return owner
        owner = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
        if owner is None:
            raise CommandError("No superuser exists; pass --user or run `manage.py createsuperuser`.")
        return owner

    def _input(self, task: str, prompt: str, labels: str, max_tokens: int | None) -> dict:
        if task == Task.CHAT:
            data = {"messages": [{"role": "user", "content": prompt}]}
        elif task == Task.COMPLETION:
            data = {"prompt": prompt}
        elif task == Task.EMBEDDING:
            return {"input": prompt}
        else:
            return {"input": prompt, "labels": [label.strip() for label in labels.split(",") if label.strip()]}
        if max_tokens is not None:
            data["max_tokens"] = max_tokens
        return data
