"""Queries compiled to SQL once, then run with new values: for the few queries every page makes
(the user's permissions and grants), the overview's (its integrations, their stamps), and the
statements of a connectivity check (`CompiledUpdate`, for its UPDATEs).

Django turns a QuerySet into SQL again at every evaluation. For these queries that costs 0.6 to
1.6 ms of Python each, where the database answers in 0.02 to 0.4 ms: on the overview, about
half of the page's own time. A `CompiledQuery` builds its QuerySet once per thread, database and
shape of its values, with stand-in values no real row holds, notes where each stand-in lands
among the SQL's parameters, and from then on runs that SQL with the real values in their place.
The rows go through the compiler's own converters, so they come back exactly as `values_list`
gives them (booleans, UUIDs, aware datetimes, on SQLite as on PostgreSQL).

What may vary between runs is what a parameter carries: an id, a list of ids (one SQL per
length), a datetime, and in an UPDATE a text. An argument named in `literals` goes into the
SQL's text instead (a slice's LIMIT and OFFSET, which tokens a check drops): each of its values
is a shape of its own. Everything else is fixed by the build function, which must depend on
nothing but its arguments. If a stand-in is not found among the parameters (a lookup that
writes its value into the SQL's text or decides without asking, or a future Django that adapts
it differently), that shape runs through the ORM every time instead: slower, never wrong.

A check is a token exchange and eight statements. On PostgreSQL, building each statement again
took 0.1 to 0.25 ms of Python, about as long as the database took to answer it. A
`CompiledUpdate` does for `queryset.update()` what a CompiledQuery does for a read, the values
to set included, and returns the row count. (The two INSERTs of a check stay the ORM's: a new
row's values go through `save()`, which encrypts the tokens.)

The compiler's `as_sql` and `results_iter(results=...)` are Django internals, stable for years
but not documented: tests/test_compiled.py holds every CompiledQuery and CompiledUpdate of the
project to the ORM's answer and to the compiled path, so an upgrade that changes them fails
there, not on a page.
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
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.query import ValuesListIterable
from django.db.models.sql import UpdateQuery
from django.utils import timezone

# Ids no row holds, inside every integer column's range: Django compiles an out-of-range value
# into "matches nothing" without a parameter (IntegerFieldOverflow), which would hide the slot.
_FIRST_SENTINEL_ID = -2_000_000_000
# A datetime no row holds; each datetime value gets its own second.
_SENTINEL_TIME = datetime(1901, 1, 1, tzinfo=UTC)
# A text no row holds (CompiledUpdate only: texts to set, such as a hash), numbered.
_SENTINEL_TEXT = "aislekeys-compiled-stand-in-{}"
# Shapes kept per thread and query: one per list length, so a page of 25 keeps at most 25.
MAX_SHAPES = 64

Value = int | datetime | str | Sequence[int]


@dataclass(frozen=True)
class _Slot:
    position: int  # index in the SQL's parameters
    name: str  # the build function's argument
    item: int | None  # index in a list value; None for a single value
    # The int type Django wrapped the stand-in in (on PostgreSQL a value to set is an Int8, an
    # Int2..., so each run binds the same parameter types); None for a plain value.
    wrap: type | None = None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple[_Slot, ...]
    compiler: Any  # the SQLCompiler that made `sql`: its converters read the rows


_UNCOMPILABLE = object()  # a shape whose stand-ins could not be found: run through the ORM


class _Compiling:
    """What CompiledQuery and CompiledUpdate share: shapes, stand-ins, and the compiled SQL kept
    per thread."""

    _texts = False  # may a value be a text?
    _kinds = "ids, lists of ids and aware datetimes"

    def __init__(self, build: Callable[..., Any], *, literals: Sequence[str] = (),
                 using: str = DEFAULT_DB_ALIAS) -> None:
        self._build = build
        self._literals = frozenset(literals)
        self._using = using
        self._local = threading.local()

    def compiled(self, **values: Value) -> bool:
        """Does this shape of values run from compiled SQL in this thread? (For the tests.)"""
        return isinstance(self._find(values), _Compiled)

    def _sql(self, stand_ins: dict[str, Value]) -> tuple[str, tuple, Any]:
        """The SQL, parameters and compiler of what `build(**stand_ins)` describes."""
        raise NotImplementedError

    def _find(self, values: dict[str, Value]) -> _Compiled | object:
        shape = self._shape(values)
        compiled = self._shapes().get(shape)
        return self._compile(shape) if compiled is None else compiled

    def _params(self, compiled: _Compiled, values: dict[str, Value]) -> list:
        connection = connections[self._using]
        params = list(compiled.params)
        for slot in compiled.slots:
            value = values[slot.name] if slot.item is None else values[slot.name][slot.item]
            value = _adapt(value, connection)
            params[slot.position] = value if slot.wrap is None else slot.wrap(value)
        return params

    def _shape(self, values: dict[str, Value]) -> tuple:
        shape = []
        for name, value in values.items():
            if name in self._literals or _beyond_64_bits(value):
                # A number no column holds: the ORM's own query for it (Django answers "matches
                # nothing" without asking), where binding it would fail on SQLite.
                shape.append((name, ("literal", value)))
                continue
            kind = _kind_of(value, texts=self._texts)
            if kind is None:
                raise TypeError(f"{type(self).__name__} takes {self._kinds}, "
                                f"not {type(value).__name__}")
            shape.append((name, kind))
        return tuple(sorted(shape))

    def _shapes(self) -> dict[tuple, _Compiled | object]:
        shapes = getattr(self._local, "shapes", None)
        if shapes is None:
            shapes = self._local.shapes = {}
        return shapes

    def _compile(self, shape: tuple) -> _Compiled | object:
        stand_ins, wanted = _stand_ins(shape)
        try:
            sql, params, compiler = self._sql(stand_ins)
        except EmptyResultSet:  # decided without asking (an empty IN): the ORM answers that shape
            compiled: _Compiled | object = _UNCOMPILABLE
        else:
            compiled = _located(sql, tuple(params), wanted, connections[self._using], compiler)
        shapes = self._shapes()
        if len(shapes) < MAX_SHAPES:
            shapes[shape] = compiled
        return compiled


class CompiledQuery(_Compiling):
    """A `values_list` query compiled once per thread, database and shape of its values.

    `build(**values)` returns the QuerySet, on the database `using`; `rows(**values)` runs it
    and returns its rows as tuples, as `list(build(**values))` would, in one query.
    """

    def rows(self, **values: Value) -> list[tuple]:
        compiled = self._find(values)
        if not isinstance(compiled, _Compiled):
            return list(self._build(**values))
        with connections[self._using].cursor() as cursor:
            cursor.execute(compiled.sql, self._params(compiled, values))
            fetched = cursor.fetchall()
        compiler = compiled.compiler
        if compiler.has_extra_select:
            # Columns the SQL needs but the caller did not ask for (DISTINCT with an ordering
            # outside the values): cut off, as the ORM's own execute_sql does.
            fetched = [row[:compiler.col_count] for row in fetched]
        return list(compiler.results_iter(results=[fetched], tuple_expected=True))

    def _sql(self, stand_ins: dict[str, Value]) -> tuple[str, tuple, Any]:
        queryset = self._build(**stand_ins)
        if queryset._iterable_class is not ValuesListIterable or queryset.db != self._using:
            raise TypeError(f"CompiledQuery needs a values_list() QuerySet (not flat or named) "
                            f"on the database {self._using!r}")
        compiler = queryset.query.get_compiler(using=self._using)
        sql, params = compiler.as_sql()
        return sql, params, compiler


class CompiledUpdate(_Compiling):
    """An UPDATE compiled once per thread, database and shape of its values.

    `build(**values)` returns `(queryset, changes)`; `run(**values)` does what
    `queryset.update(**changes)` would, in one statement, and returns the number of rows it
    updated. A value may also be a text, to set a text column; a text the ORM would first
    transform (in a `contains` lookup, say) is not found among the parameters, so that shape
    runs through the ORM.
    """

    _texts = True
    _kinds = "ids, lists of ids, texts and aware datetimes"

    def run(self, **values: Value) -> int:
        compiled = self._find(values)
        if not isinstance(compiled, _Compiled):
            queryset, changes = self._build(**values)
            return queryset.update(**changes)
        # As QuerySet.update does: a write that fails inside atomic() rolls the block back.
        with (transaction.mark_for_rollback_on_error(using=self._using),
              connections[self._using].cursor() as cursor):
            cursor.execute(compiled.sql, self._params(compiled, values))
            return cursor.rowcount

    def _sql(self, stand_ins: dict[str, Value]) -> tuple[str, tuple, Any]:
        queryset, changes = self._build(**stand_ins)
        query = queryset.query
        if queryset.db != self._using or query.is_sliced or query.order_by:
            raise TypeError(f"CompiledUpdate needs an unsliced, unordered QuerySet on the "
                            f"database {self._using!r}")
        update = query.chain(UpdateQuery)
        update.add_update_values(changes)
        if update.related_updates or not connections[self._using].features.update_can_self_select:
            # A parent model's columns, or a database that reads the rows' ids first: more than
            # one statement, which no single compiled SQL can be.
            raise TypeError("CompiledUpdate takes an update of one table in one statement")
        update.clear_select_clause()  # as QuerySet.update does
        compiler = update.get_compiler(using=self._using)
        sql, params = compiler.as_sql()
        if not sql:  # nothing to set: the ORM's update answers 0 without asking
            raise EmptyResultSet
        return sql, params, compiler


def _beyond_64_bits(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)
            and not -(2**63) <= value < 2**63)


def _kind_of(value: Value, *, texts: bool) -> str | int | None:
    """The shape a value gives its query; None for a value that is refused."""
    # Only what the ORM would pass on as it is; anything it would first prepare differently (a
    # naive datetime is local time to the ORM, a bool is no id) is refused rather than guessed.
    if isinstance(value, datetime):
        return None if timezone.is_naive(value) else "datetime"
    if isinstance(value, int) and not isinstance(value, bool):
        return "int"
    if isinstance(value, str):
        return "text" if texts else None
    if isinstance(value, list | tuple) and all(
            isinstance(item, int) and not isinstance(item, bool) for item in value):
        return len(value)  # a list of ids: one SQL per length
    return None


def _stand_ins(shape: tuple) -> tuple[dict[str, Value], dict[Any, tuple[str, int | None]]]:
    """Stand-in values for a shape, and what each stand-in stands for."""
    values: dict[str, Value] = {}
    wanted: dict[Any, tuple[str, int | None]] = {}
    next_id = _FIRST_SENTINEL_ID
    next_time = _SENTINEL_TIME
    next_text = 0
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
        elif kind == "text":
            values[name] = _SENTINEL_TEXT.format(next_text)
            wanted[values[name]] = (name, None)
            next_text += 1
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
        kind = type(param)
        # bool is an int: a True parameter must not pass for a stand-in id.
        if kind is bool or not isinstance(param, int | str | datetime) or param not in adapted:
            continue
        name, item = adapted[param]
        wrap = kind if isinstance(param, int) and kind is not int else None
        slots.append(_Slot(position=position, name=name, item=item, wrap=wrap))
    # Each stand-in at least once (a value used twice in the query is two slots); one missing
    # was folded into the SQL's text, which a run with another value would not change.
    if {(slot.name, slot.item) for slot in slots} != set(adapted.values()):
        return _UNCOMPILABLE
    return _Compiled(sql=sql, params=params, slots=tuple(slots), compiler=compiler)
