"""The Celery app: configured from Django settings under the CELERY_ namespace."""

import os

from celery import Celery

from config import celery_redis_transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
celery_redis_transport.install()

app = Celery("djinn", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
