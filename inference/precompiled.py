"""Lookups and updates on the hottest path compiled to SQL once, not at every call.

Every job request finds its API key (with the user and their plan) and its
model by a unique value. The ORM compiles a queryset's SQL anew at each
call, which cost more than running it (about 0.4 ms against 0.15 ms for the
key's three-table join). `PrecompiledLookup` compiles the queryset once per
process, then only swaps the looked-up value into the parameters and builds
the instances as Django's own ModelIterable does, `select_related` included.
It relies on the ORM's compiler (Django 5.2 is pinned); the tests compare its
results with the plain queryset's.

Once per process, not per thread: a thread-pool worker's 100 threads each
compiled the claim, the job's lookup and the first-token update on their
first job, 5-10 ms of CPU per thread, all at once when a burst of jobs
started, while the streams already running waited for the GIL. What a
compiled query keeps (SQL, parameters, the compiler's converters and
related-object populators) is only read when it runs, on any thread, each
through its own connection; the compiling thread's connection wrapper is
used for its operations (value conversions), never for a query.

`PrecompiledUpdate` does the same for an UPDATE a worker runs on every job
(claiming it, marking its first token): building and compiling the queryset
cost about 1.4 ms of the claim's 1.8 ms. `then_lookup` runs an update and a
lookup of the row it changed as one statement: a worker claims a job and
loads it to run in one round trip.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, transaction
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.models.sql import UpdateQuery

M = TypeVar("M", bound=Model)

_PLACEHOLDER = "\x1fdjinn-precompiled-lookup-value\x1f"


T = TypeVar("T")


class _Once(Generic[T]):
    """`make()`'s result, made by the first caller; the others wait for it, then share it."""

    def __init__(self, make: Callable[[], T]):
        self._make = make
        self._made: T | None = None
        self._making = threading.Lock()

    def __call__(self) -> T:
        if self._made is None:
            with self._making:
                if self._made is None:
                    self._made = self._make()
        return self._made


@dataclass(frozen=True)
class _Compiled:
    compiler: Any
    sql: str
    params: tuple
    value_index: int
    prepare: Callable[[Any], Any]  # the looked-up field's conversion for this database (a UUID's hex on SQLite)
    model_fields: slice
    init_list: list[str]
    related_populators: list
    # What results_iter() works out again at every call: each column's value converters.
    converters: dict


class PrecompiledLookup(Generic[M]):
    """`lookup(value)` is `queryset_for(value).first()` for a lookup on a unique value."""

    def __init__(self, queryset_for: Callable[[Any], QuerySet[M]], placeholder: Any = _PLACEHOLDER):
        """`placeholder`: a value the field accepts and no real lookup uses (a UUID field refuses a string)."""
        self._queryset_for = queryset_for
        self._placeholder = placeholder
        self._compiled = _Once(self._compile)

    def __call__(self, value: Any) -> M | None:
        compiled = self._compiled()
        with connections[compiled.compiler.using].cursor() as cursor:
            cursor.execute(compiled.sql, self._params(compiled, value))
            return self._instance(compiled, cursor.fetchmany(1))

    @staticmethod
    def _params(compiled: _Compiled, value: Any) -> list:
        params = list(compiled.params)
        params[compiled.value_index] = compiled.prepare(value)
        return params

    @staticmethod
    def _instance(compiled: _Compiled, rows: list) -> M | None:
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        for row in rows:
            instance = compiled.compiler.query.model.from_db(
                compiled.compiler.using, compiled.init_list, row[compiled.model_fields]
            )
            for populator in compiled.related_populators:
                populator.populate(row, instance)
            return instance
        return None

    def _compile(self) -> _Compiled:
        queryset = self._queryset_for(self._placeholder)[:1]
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        lookups = [child for child in queryset.query.where.children if getattr(child, "rhs", None) == self._placeholder]
        if len(lookups) != 1:
            raise ValueError("a precompiled lookup filters on its value exactly once")
        field, connection = lookups[0].lhs.output_field, connections[queryset.db]

        def prepare(value: Any) -> Any:
            return field.get_db_prep_value(value, connection, prepared=False)

        placeholder = prepare(self._placeholder)
        if list(params).count(placeholder) != 1:
            raise ValueError("a precompiled lookup filters on its value exactly once")
        select, klass_info = compiler.select, compiler.klass_info
        first, last = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        columns = [column[0] for column in select[: compiler.col_count]]
        if compiler.has_composite_fields(columns):
            raise ValueError("a precompiled lookup reads no composite primary key")
        return _Compiled(
            compiler=compiler,
            sql=sql,
            params=tuple(params),
            value_index=list(params).index(placeholder),
            prepare=prepare,
            model_fields=slice(first, last),
            init_list=[column[0].target.attname for column in select[first:last]],
            related_populators=get_related_populators(klass_info, select, queryset.db),
            converters=compiler.get_converters(columns),
        )


@dataclass(frozen=True)
class _CompiledUpdate:
    using: str
    table: str
    sql: str
    params: tuple
    slots: dict[str, tuple[list[int], Callable[[Any], Any]]]  # each argument: where it goes, how it is prepared


class PrecompiledUpdate:
    """`update(**arguments)` runs `build(**arguments)`'s update, compiled once per process; returns the rows changed.

    `build` returns `(queryset, values)`, as for `queryset.update(**values)`. `placeholders` gives each
    argument a value no real call uses, of a type its fields accept, and `fields` names a field per
    argument that prepares it for the database (a UUID is hex on SQLite, a datetime is made aware).
    """

    def __init__(
        self,
        build: Callable[..., tuple[QuerySet, dict[str, Any]]],
        *,
        placeholders: dict[str, Any],
        fields: dict[str, str],
    ):
        self._build = build
        self._placeholders = placeholders
        self._fields = fields
        self._compiled = _Once(self._compile)

    def __call__(self, **arguments: Any) -> int:
        compiled = self._compiled()
        with transaction.mark_for_rollback_on_error(compiled.using), connections[compiled.using].cursor() as cursor:
            cursor.execute(compiled.sql, self._params(compiled, arguments))
            return cursor.rowcount

    def then_lookup(self, lookup: PrecompiledLookup[M], value: Any, **arguments: Any) -> M | None:
        """Run the update, then `lookup(value)` if it changed a row (None if not), in one statement on PostgreSQL.

        The lookup reads the row as the update left it, from the update's RETURNING: wrapped in a
        CTE named after the table, the update shadows the table in the lookup's own compiled SQL
        (`WITH "job" AS (UPDATE "job" ... RETURNING *) SELECT ... FROM "job" JOIN ...`), so its
        joins and instance building stay the ORM's. Elsewhere, two statements.
        """
        compiled = self._compiled()
        connection = connections[compiled.using]
        if connection.vendor != "postgresql":
            return lookup(value) if self(**arguments) else None
        select = lookup._compiled()
        table = connection.ops.quote_name(compiled.table)
        sql = f"WITH {table} AS ({compiled.sql} RETURNING *) {select.sql}"
        with transaction.mark_for_rollback_on_error(compiled.using), connection.cursor() as cursor:
            cursor.execute(sql, self._params(compiled, arguments) + lookup._params(select, value))
            return lookup._instance(select, cursor.fetchmany(1))

    @staticmethod
    def _params(compiled: _CompiledUpdate, arguments: dict[str, Any]) -> list:
        params = list(compiled.params)
        for name, (indexes, prepare) in compiled.slots.items():
            prepared = prepare(arguments[name])
            for index in indexes:
                params[index] = prepared
        return params

    def _compile(self) -> _CompiledUpdate:
        queryset, values = self._build(**self._placeholders)
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(values)
        query.annotations = {}
        compiler = query.get_compiler(using=queryset.db)
        if query.related_updates or compiler.query.get_meta().parents:
            raise ValueError("a precompiled update changes one table")
        sql, params = compiler.as_sql()
        connection = connections[queryset.db]
        slots = {}
        for name, placeholder in self._placeholders.items():
            field = queryset.model._meta.get_field(self._fields[name])

            def prepare(value: Any, field=field) -> Any:
                return field.get_db_prep_value(value, connection, prepared=False)

            indexes = [index for index, param in enumerate(params) if param == prepare(placeholder)]
            if not indexes:
                raise ValueError(f"the update does not use its argument {name!r}")
            slots[name] = (indexes, prepare)
        if sum(len(indexes) for indexes, _ in slots.values()) != len({i for ix, _ in slots.values() for i in ix}):
            raise ValueError("two arguments' placeholders are equal once prepared")
        table = queryset.model._meta.db_table
        return _CompiledUpdate(using=queryset.db, table=table, sql=sql, params=tuple(params), slots=slots)
