from django.core.management.base import BaseCommand

from inference.services.registry import ai_models_register_defaults


class Command(BaseCommand):
    help = "Register the default models that are not registered yet (operators' edits are kept)."

    def handle(self, *args, **options):
        created = ai_models_register_defaults()
        for model in created:
            self.stdout.write(f"registered {model.slug} ({model.task}, {model.backend})")
        if not created:
            self.stdout.write("default models already registered")
