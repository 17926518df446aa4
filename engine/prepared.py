"""Core statements compiled once per dialect and run on the DBAPI cursor of the caller's connection.

``Connection.execute`` spends 20 to 30 µs per statement on the cache key, the execution context and
the result wrapping, while SQLite runs a primary-key SELECT in 4 to 6 µs (the statement timing of
``python -m bench.engine_vs_spiff --profile``, on the machine listed in docs/benchmarks.md). A step
of a case runs five to seven statements, so the step's hot path uses this module instead. The SQL
text, the bind processors and the result processors all come from SQLAlchemy's compilation for the
connection's dialect, so the values written and read are the same as through ``Connection.execute``.

The statements run on the DBAPI connection of the caller's ``Connection``, so they belong to its open
transaction and commit or roll back with it. Connection events such as ``before_cursor_execute`` do
not fire for them. A driver error goes through the connection's own error handling, so it is raised
as the same ``DBAPIError`` subclass as from ``execute`` and a broken connection is invalidated.
"""

from __future__ import annotations

import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler

Params = Mapping[str, Any]


class PreparedStatement:
    """A Core statement whose compiled form is kept per dialect and per set of parameter names.

    The parameter names matter for an INSERT or UPDATE without ``values()``, because such a statement
    writes the columns that the parameters name, as with ``execute``.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, ...], _Compiled]] = \
            weakref.WeakKeyDictionary()

    def first(self, conn: Connection, params: Params | None = None) -> Any:
        """Run a SELECT, or a statement with RETURNING, and return its first row or None."""
        compiled = self._compile(conn.dialect, params)
        cursor = compiled.run(conn, params)
        try:
            row = cursor.fetchone()
            return None if row is None else compiled.row(cursor, row)
        finally:
            cursor.close()

    def all(self, conn: Connection, params: Params | None = None) -> list[Any]:
        compiled = self._compile(conn.dialect, params)
        cursor = compiled.run(conn, params)
        try:
            return [compiled.row(cursor, row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def scalar(self, conn: Connection, params: Params | None = None) -> Any:
        """Return the first column of the first row, or None when there is no row."""
        row = self.first(conn, params)
        return None if row is None else row[0]

    def run(self, conn: Connection, params: Params | None = None) -> int:
        """Run an INSERT, UPDATE or DELETE and return the number of rows it matched."""
        cursor = self._compile(conn.dialect, params).run(conn, params)
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def run_many(self, conn: Connection, rows: Sequence[Params]) -> None:
        """Run a DML statement once per parameter set in one ``executemany``. Every set must name the same keys."""
        if not rows:
            return
        cursor = self._compile(conn.dialect, rows[0]).run_many(conn, rows)
        cursor.close()

    def _compile(self, dialect: Dialect, params: Params | None) -> _Compiled:
        names = tuple(sorted(params)) if params else ()
        by_names = self._compiled.get(dialect)
        if by_names is None:
            by_names = self._compiled.setdefault(dialect, {})
        compiled = by_names.get(names)
        if compiled is None:
            compiled = by_names[names] = _Compiled(self.statement, dialect, names)
        return compiled


class _Compiled:
    """One compilation of a statement: its SQL text, parameter order, processors and row type."""

    def __init__(self, statement: Executable, dialect: Dialect, names: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(names))  # type: ignore[attr-defined]
        assert isinstance(compiled, SQLCompiler)
        if compiled.post_compile_params or compiled.literal_execute_params:
            # SQLAlchemy renders expanding IN lists anew for each execution, which this module does not do.
            raise ValueError(f"{compiled.string!r} has expanding or literal-execute parameters; write the IN "
                             "list as literal() values instead.")
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise ValueError(f"{compiled.string!r} needs Python-side column defaults; pass every column instead.")
        self.dialect = dialect
        self.sql = compiled.string
        self.defaults: dict[str, Any] = dict(compiled.construct_params(escape_names=False, _check=False))
        self.required = frozenset(bind.key for bind in compiled.binds.values() if bind.required)
        processors: Mapping[str, Callable[[Any], Any]] = compiled._bind_processors  # type: ignore[assignment]
        self.positional = compiled.positional
        order = compiled.positiontup if compiled.positional else list(self.defaults)
        self.binds = [(name, processors.get(name)) for name in order or ()]
        # A pyformat dialect (psycopg) names each parameter in the SQL text by its escaped name.
        escaped: Mapping[str, str] = compiled.escaped_bind_names or {}
        self.sql_names = [escaped.get(name, name) for name, _process in self.binds]
        self.result_types = [column.type for column in compiled._result_columns]
        self.row_type: Any = None
        if compiled._result_columns:
            self.row_type = namedtuple("Row", [column.keyname for column in compiled._result_columns])  # type: ignore[misc]
        self._result_processors: list[Callable[[Any], Any] | None] | None = None

    def parameters(self, params: Params | None) -> Any:
        """Convert ``params`` as SQLAlchemy does: fill in the values of literal binds, then run each bind processor."""
        if params:
            missing = self.required.difference(params)
            if missing:
                raise exc.InvalidRequestError(f"The parameters {sorted(missing)} of {self.sql!r} are missing; pass a "
                                              "value for each.")
            values = {**self.defaults, **params}
        else:
            values = self.defaults
        converted = [values[name] if process is None else process(values[name]) for name, process in self.binds]
        if self.positional:
            return tuple(converted)
        return dict(zip(self.sql_names, converted, strict=True))

    def run(self, conn: Connection, params: Params | None) -> Any:
        parameters = self.parameters(params)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(self.sql, parameters)
        except BaseException as error:
            # SQLAlchemy's own handling: wrap the driver error, and invalidate a connection that broke.
            conn._handle_dbapi_exception(error, self.sql, parameters, cursor, None)
        return cursor

    def run_many(self, conn: Connection, rows: Sequence[Params]) -> Any:
        parameters = [self.parameters(row) for row in rows]
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(self.sql, parameters)
        except BaseException as error:
            conn._handle_dbapi_exception(error, self.sql, parameters, cursor, None)
        return cursor

    def row(self, cursor: Any, values: Sequence[Any]) -> Any:
        processors = self._result_processors
        if processors is None:
            processors = self._result_processors = [
                kind._cached_result_processor(self.dialect, description[1])
                for kind, description in zip(self.result_types, cursor.description, strict=True)
            ]
        return self.row_type._make([value if process is None else process(value)
                                    for process, value in zip(processors, values, strict=True)])
