"""Read queries compiled to SQL once, then run with new values: for the few queries every page
makes (the user's permissions and grants) and the overview's (its integrations, their stamps).

Django turns a QuerySet into SQL again at every evaluation. For these queries that costs 0.6 to
1.6 ms of Python each, where the database answers in 0.02 to 0.4 ms: on the overview, about
half of the page's own time. A `CompiledQuery` builds its QuerySet once per thread, database and
shape of its values, with stand-in values no real row holds, notes where each stand-in lands
among the SQL's parameters, and from then on runs that SQL with the real values in their place.
The rows go through the compiler's own converters, so they come back exactly as `values_list`
gives them (booleans, UUIDs, aware datetimes, on SQLite as on PostgreSQL).

What may vary between runs is what a parameter carries: an id, a list of ids (one SQL per
length) or a datetime. An argument named in `literals` goes into the SQL's text instead (a
slice's LIMIT and OFFSET): each of its values is a shape of its own. Everything else is fixed
by the build function, which must depend on nothing but its arguments. If a stand-in is not
found among the parameters (a lookup that writes its value into the SQL's text or decides
without asking, or a future Django that adapts it differently), that shape runs through the
ORM every time instead: slower, never wrong.

The compiler's `as_sql` and `results_iter(results=...)` are Django internals, stable for years
but not documented: tests/test_compiled.py holds every CompiledQuery of the project to the ORM's
answer and to the compiled path, so an upgrade that changes them fails there, not on a page.
The compiled SQL is kept per thread (compiling adjusts the query's aliases in place, so gthread
workers each compile their own) and per database alias.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import QuerySet
from django.db.models.query import ValuesListIterable
from django.utils import timezone

# Ids no row holds, inside every integer column's range: Django compiles an out-of-range value
# into "matches nothing" without a parameter (IntegerFieldOverflow), which would hide the slot.
_FIRST_SENTINEL_ID = -2_000_000_000
# A datetime no row holds; each datetime value gets its own second.
_SENTINEL_TIME = datetime(1901, 1, 1, tzinfo=UTC)
# Shapes kept per thread and query: one per list length, so a page of 25 keeps at most 25.
MAX_SHAPES = 64

Value = int | datetime | Sequence[int]


@dataclass(frozen=True)
class _Slot:
    position: int  # index in the SQL's parameters
    name: str  # the build function's argument
    item: int | None  # index in a list value; None for a single value


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple[_Slot, ...]
    compiler: Any  # the SQLCompiler that made `sql`: its converters read the rows


_UNCOMPILABLE = object()  # a shape whose stand-ins could not be found: run through the ORM


class CompiledQuery:
    """A `values_list` query compiled once per thread, database and shape of its values.

    `build(**values)` returns the QuerySet, on the database `using`; `rows(**values)` runs it
    and returns its rows as tuples, as `list(build(**values))` would, in one query.
    """

    def __init__(self, build: Callable[..., QuerySet], *, literals: Sequence[str] = (),
                 using: str = DEFAULT_DB_ALIAS) -> None:
        self._build = build
        self._literals = frozenset(literals)
        self._using = using
        self._local = threading.local()

    def rows(self, **values: Value) -> list[tuple]:
        shape = self._shape(values)
        compiled = self._shapes().get(shape)
        if compiled is None:
            compiled = self._compile(shape)
        if compiled is _UNCOMPILABLE:
            return list(self._build(**values))
        connection = connections[self._using]
        params = list(compiled.params)
        for slot in compiled.slots:
            value = values[slot.name] if slot.item is None else values[slot.name][slot.item]
            params[slot.position] = _adapt(value, connection)
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            fetched = cursor.fetchall()
        compiler = compiled.compiler
        if compiler.has_extra_select:
            # Columns the SQL needs but the caller did not ask for (DISTINCT with an ordering
            # outside the values): cut off, as the ORM's own execute_sql does.
            fetched = [row[:compiler.col_count] for row in fetched]
        return list(compiler.results_iter(results=[fetched], tuple_expected=True))

    def compiled(self, **values: Value) -> bool:
        """Does this shape of values run from compiled SQL in this thread? (For the tests.)"""
        shape = self._shape(values)
        found = self._shapes().get(shape) or self._compile(shape)
        return isinstance(found, _Compiled)

    def _shape(self, values: dict[str, Value]) -> tuple:
        return tuple(sorted(
            (name, ("literal", value) if name in self._literals else _shape_of(value))
            for name, value in values.items()))

    def _shapes(self) -> dict[tuple, _Compiled | object]:
        shapes = getattr(self._local, "shapes", None)
        if shapes is None:
            shapes = self._local.shapes = {}
        return shapes

    def _compile(self, shape: tuple) -> _Compiled | object:
        stand_ins, wanted = _stand_ins(shape)
        queryset = self._build(**stand_ins)
        if queryset._iterable_class is not ValuesListIterable or queryset.db != self._using:
            raise TypeError(f"CompiledQuery needs a values_list() QuerySet (not flat or named) "
                            f"on the database {self._using!r}")
        connection = connections[self._using]
        compiler = queryset.query.get_compiler(using=self._using)
        try:
            sql, params = compiler.as_sql()
        except EmptyResultSet:  # a lookup that decided on its own: the ORM answers that shape
            compiled: _Compiled | object = _UNCOMPILABLE
        else:
            compiled = _located(sql, tuple(params), wanted, connection, compiler)
        shapes = self._shapes()
        if len(shapes) < MAX_SHAPES:
            shapes[shape] = compiled
        return compiled


def _shape_of(value: Value) -> str | int:
    # Only what the ORM would pass on as it is; anything it would first prepare differently (a
    # naive datetime is local time to the ORM, a bool is no id) is refused rather than guessed.
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            raise TypeError("CompiledQuery takes aware datetimes only")
        return "datetime"
    if isinstance(value, int) and not isinstance(value, bool):
        return "int"
    if isinstance(value, list | tuple) and all(
            isinstance(item, int) and not isinstance(item, bool) for item in value):
        return len(value)  # a list of ids: one SQL per length
    raise TypeError(f"CompiledQuery takes ids, lists of ids and aware datetimes, "
                    f"not {type(value).__name__}")


def _stand_ins(shape: tuple) -> tuple[dict[str, Value], dict[Any, tuple[str, int | None]]]:
    """Stand-in values for a shape, and what each stand-in stands for."""
    values: dict[str, Value] = {}
    wanted: dict[Any, tuple[str, int | None]] = {}
    next_id = _FIRST_SENTINEL_ID
    next_time = _SENTINEL_TIME
    for name, kind in shape:
        if isinstance(kind, tuple):  # ("literal", value): written into the SQL as it is
            values[name] = kind[1]
        elif kind == "int":
            values[name] = next_id
            wanted[next_id] = (name, None)
            next_id -= 1
        elif kind == "datetime":
            values[name] = next_time
            wanted[next_time] = (name, None)
            next_time += timedelta(seconds=1)
        else:
            ids = list(range(next_id, next_id - kind, -1))
            values[name] = ids
            wanted.update({sentinel: (name, item) for item, sentinel in enumerate(ids)})
            next_id -= kind
    return values, wanted


def _adapt(value: Any, connection: Any) -> Any:
    # As a DateTimeField lookup adapts its value (a text on SQLite, the datetime on PostgreSQL).
    if isinstance(value, datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return value


def _located(sql: str, params: tuple, wanted: dict, connection: Any, compiler: Any
             ) -> _Compiled | object:
    adapted = {_adapt(sentinel, connection): target for sentinel, target in wanted.items()}
    slots = []
    for position, param in enumerate(params):
        # bool is an int: a True parameter must not pass for a stand-in id.
        if type(param) in (int, str, datetime) and param in adapted:
            name, item = adapted[param]
            slots.append(_Slot(position=position, name=name, item=item))
    # Each stand-in at least once (a value used twice in the query is two slots); one missing
    # was folded into the SQL's text, which a run with another value would not change.
    if {(slot.name, slot.item) for slot in slots} != set(adapted.values()):
        return _UNCOMPILABLE
    return _Compiled(sql=sql, params=params, slots=tuple(slots), compiler=compiler)
