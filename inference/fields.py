"""Model fields of our own."""

from __future__ import annotations

from django.db import models

from inference import json_codec


class OutputJSONField(models.JSONField):
    """A job's output: JSON written once, read whole, never queried inside.

    An embedding job's output is ~100,000 floats. On PostgreSQL the column is `json`, not
    `jsonb`: jsonb parses every number into its binary form on the way in and prints it again
    on the way out, which took ~21 ms to store 256 vectors and ~7 ms to read them back; json
    only checks the text (~8 ms and ~3 ms). It is written and read as text through orjson
    (the standard library spends ~40 ms turning those floats into JSON).
    """

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "json"
        return super().db_type(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        adapted = super().get_db_prep_value(value, connection, prepared)
        if connection.vendor == "postgresql":
            from psycopg.types.json import Json, Jsonb

            if isinstance(adapted, Jsonb):
                return Json(adapted.obj, dumps=json_codec.dumps)
        return adapted

    def select_format(self, compiler, sql, params):
        # Read as text, parsed below by orjson: psycopg would parse `json` with the standard library.
        if compiler.connection.vendor == "postgresql":
            return f"({sql})::text", params
        return super().select_format(compiler, sql, params)

    def from_db_value(self, value, expression, connection):
        if isinstance(value, str) and connection.vendor == "postgresql":
            return json_codec.loads(value)
        return super().from_db_value(value, expression, connection)
