"""Model fields of our own."""

from __future__ import annotations

from django.db import models

from inference import json_codec


class OutputJSONField(models.JSONField):
    """A JSONField that PostgreSQL receives as orjson's text: a job's embeddings are ~100,000
    floats, and the standard library spends ~40 ms per 256 texts turning them into JSON."""

    def get_db_prep_value(self, value, connection, prepared=False):
        adapted = super().get_db_prep_value(value, connection, prepared)
        if connection.vendor == "postgresql":
            from psycopg.types.json import Jsonb

            if isinstance(adapted, Jsonb):
                return Jsonb(adapted.obj, dumps=json_codec.dumps)
        return adapted
