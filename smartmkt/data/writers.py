"""Where an import's rows go: the few statements the order writer and the quarantine need, on one
of two connections.

``CoreRows``: SQLAlchemy Core in the caller's transaction, on any database (small files, the shop
API, PostgreSQL). ``ArrowSQLite``: a bulk import into SQLite, on an ADBC connection
(``adbc_driver_sqlite``), in one transaction of its own. Its order lines are bound from Arrow
buffers in C instead of one Python tuple per line (about 1.4 s instead of 4.4 s per million lines
on the bench machine), and the orders table's secondary indexes are dropped inside that
transaction and built again at its end, so an interruption rolls all of it back.

ADBC's driver carries its own SQLite library. Two copies of SQLite in one process must never both
have the same database file open (closing a file in one drops the other's POSIX locks:
sqlite.org/howtocorrupt.html, 2.2.1), so ``ArrowSQLite`` is only opened once the engine's pooled
connections are closed and none is checked out (``arrow_bulk_possible``), and the importer opens
none until it is closed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from sqlalchemy import JSON, Boolean, Connection, DateTime, Engine, Index, bindparam, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import QueuePool
from sqlalchemy.schema import CreateIndex

from smartmkt.data.timings import Timings
from smartmkt.store.db import dialect_insert
from smartmkt.store.models import Order

PARAMS_PER_QUERY = 5_000
# The bulk connection's page cache while lines go in, and while the indexes are built. Measured
# on 5M lines (insert, then two index builds, commit): one 256 MB cache took 22.0 s at 725 MB
# resident, 32 MB 16.8 s at 323 MB; 64 MB then 16 MB 15.4 s at 293 MB (a small cache makes
# SQLite's index sorter merge in smaller, cache-friendly runs; a larger one keeps more of the
# unique line_key index in memory while lines go in).
CACHE_KIB = 64 * 1024
INDEX_CACHE_KIB = 16 * 1024
COPY_ROWS = 1_000  # this many order lines or more go to PostgreSQL through COPY
SQLITE_TIME = "%Y-%m-%d %H:%M:%S%.6f"  # how SQLAlchemy stores a DateTime in SQLite
ORDER_COLUMNS = (
    "customer_id",
    "product_id",
    "quantity",
    "unit_price_cents",
    "discount_pct",
    "amount_cents",
    "ordered_at",
    "channel",
    "line_key",
    "imputed",
)


class Rows(Protocol):
    """The statements an import writes with: by external reference, insert, update."""

    def by_ref(self, model: Any, columns: Sequence[Any], refs: Sequence[str] | None) -> list[Any]:
        """``columns`` of the rows whose external_ref is in ``refs`` (None: every row)."""

    def insert(self, model: Any, rows: Sequence[dict[str, Any]], ignore_conflicts: bool = False) -> None:
        """New rows; with ``ignore_conflicts`` a row a unique index already has is skipped."""

    def update_by_ref(self, model: Any, rows: Sequence[dict[str, Any]], fixed: dict[str, Any]) -> None:
        """Each row's values (key "ref": the external_ref), plus ``fixed`` for all of them."""

    def scalar(self, statement: Any) -> Any:
        """One value of a Core statement (the catalog's next version)."""

    def insert_lines(self, lines: pl.DataFrame) -> int:
        """Order lines (``ORDER_COLUMNS``) whose line_key is not stored yet; how many were new."""


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), PARAMS_PER_QUERY):
        yield items[start : start + PARAMS_PER_QUERY]


class CoreRows:
    """The statements through SQLAlchemy Core, in ``conn``'s transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def by_ref(self, model: Any, columns: Sequence[Any], refs: Sequence[str] | None) -> list[Any]:
        if refs is None:
            return list(self.conn.execute(select(*columns)).all())
        rows: list[Any] = []
        for part in _chunks(refs):
            rows.extend(self.conn.execute(select(*columns).where(model.external_ref.in_(part))).all())
        return rows

    def insert(self, model: Any, rows: Sequence[dict[str, Any]], ignore_conflicts: bool = False) -> None:
        statement = dialect_insert(self.conn, model)
        if ignore_conflicts:
            statement = statement.on_conflict_do_nothing()
        for part in _chunks(rows):
            self.conn.execute(statement, list(part))

    def update_by_ref(self, model: Any, rows: Sequence[dict[str, Any]], fixed: dict[str, Any]) -> None:
        if not rows:
            return
        names = [name for name in rows[0] if name != "ref"]
        statement = (
            update(model)
            .where(model.external_ref == bindparam("ref"))
            .values({**{name: bindparam(name) for name in names}, **fixed})
        )
        self.conn.execute(statement.execution_options(synchronize_session=False), list(rows))

    def scalar(self, statement: Any) -> Any:
        return self.conn.execute(statement).scalar()

    def insert_lines(self, lines: pl.DataFrame) -> int:
        if self.conn.dialect.name == "sqlite":
            result = self.conn.exec_driver_sql(_insert_lines_sql(), _sqlite_lines(lines).rows())
            return int(result.rowcount)
        if self.conn.dialect.name == "postgresql" and lines.height >= COPY_ROWS:
            return self._copy_lines(lines)
        inserted = 0
        dicts = [
            {**row, "imputed": json.loads(row["imputed"]) if row["imputed"] else None}
            for row in lines.select(ORDER_COLUMNS).iter_rows(named=True)
        ]
        statement = dialect_insert(self.conn, Order).on_conflict_do_nothing(index_elements=["line_key"])
        for part in _chunks(dicts):
            inserted += len(self.conn.execute(statement.returning(Order.id), list(part)).all())
        return inserted

    def _copy_lines(self, lines: pl.DataFrame) -> int:
        """PostgreSQL: the lines as CSV through COPY into a temporary table (dropped at commit),
        then moved into orders in time order, skipping the keys it already has."""
        names = ", ".join(ORDER_COLUMNS)
        data = (
            _in_time_order(lines)
            .select(ORDER_COLUMNS)
            .write_csv(include_header=False, null_value=r"\N", datetime_format="%Y-%m-%dT%H:%M:%S%.6f%z")
        )
        cursor = self.conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(
                "CREATE TEMPORARY TABLE import_lines ON COMMIT DROP AS"
                f" SELECT {names} FROM orders WITH NO DATA"
            )
            with cursor.copy(f"COPY import_lines ({names}) FROM STDIN (FORMAT csv, NULL '\\N')") as copy:
                copy.write(data)
            cursor.execute(
                f"INSERT INTO orders ({names}) SELECT {names} FROM import_lines"
                " ON CONFLICT (line_key) DO NOTHING"
            )
            inserted = cursor.rowcount
            cursor.execute("DROP TABLE import_lines")
        finally:
            cursor.close()
        return int(inserted)


def _insert_lines_sql() -> str:
    names = ", ".join(ORDER_COLUMNS)
    marks = ", ".join("?" * len(ORDER_COLUMNS))
    return f"INSERT OR IGNORE INTO orders ({names}) VALUES ({marks})"


def _in_time_order(lines: pl.DataFrame) -> pl.DataFrame:
    """Order lines in time order, so order ids follow time (and a time-ordered export appends
    to the ordered_at index instead of updating it at random)."""
    return lines.sort("ordered_at", "customer_id", "product_id", maintain_order=True)


def _sqlite_lines(lines: pl.DataFrame) -> pl.DataFrame:
    """Order lines as SQLite stores them: in time order, the time as SQLAlchemy writes it."""
    return (
        _in_time_order(lines)
        .select(
            *(c for c in ORDER_COLUMNS if c != "ordered_at"),
            pl.col("ordered_at").dt.replace_time_zone(None).dt.strftime(SQLITE_TIME),
        )
        .select(ORDER_COLUMNS)
    )


# --- SQLite through ADBC -----------------------------------------------------------------------
def sqlite_value(value: Any) -> Any:
    """A Python value as SQLAlchemy's SQLite types store it (DateTime, JSON, Boolean)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dict | list):
        return json.dumps(value)
    if isinstance(value, bool):
        return int(value)
    return value


def _sqlite_column(column: Any, values: list[Any]) -> list[Any]:
    """A column's values as SQLAlchemy's SQLite types store them; only the types that need it
    are converted value by value."""
    if isinstance(column.type, JSON | DateTime | Boolean):
        return [sqlite_value(value) for value in values]
    return values


def _column_default(column: Any) -> Any:
    default = column.default
    return default.arg if default is not None and default.is_scalar else None


class ArrowSQLite:
    """A bulk import's own connection to a SQLite store (ADBC), in one transaction."""

    def __init__(self, path: Path) -> None:
        import adbc_driver_sqlite.dbapi

        self.connection = adbc_driver_sqlite.dbapi.connect(str(path), autocommit=True)
        self.cursor = self.connection.cursor()

    def close(self) -> None:
        self.cursor.close()
        self.connection.close()

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """The statement's rows (fetched as Arrow: ``fetchall`` costs ~6 µs a row)."""
        self.cursor.execute(sql, params)
        if not self.cursor.description:
            return []
        columns = self.cursor.fetch_arrow_table().columns
        return list(zip(*(column.to_pylist() for column in columns), strict=True))

    def by_ref(self, model: Any, columns: Sequence[Any], refs: Sequence[str] | None) -> list[Any]:
        names = ", ".join(c.key for c in columns)
        table = model.__tablename__
        if refs is None:
            rows = self.execute(f"SELECT {names} FROM {table}")
        else:
            rows = []
            for part in _chunks(refs):
                marks = ", ".join("?" * len(part))
                sql = f"SELECT {names} FROM {table} WHERE external_ref IN ({marks})"
                rows += self.execute(sql, list(part))
        decoded = [i for i, c in enumerate(columns) if isinstance(c.type, JSON)]
        if not decoded:
            return rows
        return [
            tuple(json.loads(v) if i in decoded and v is not None else v for i, v in enumerate(row))
            for row in rows
        ]

    def insert(self, model: Any, rows: Sequence[dict[str, Any]], ignore_conflicts: bool = False) -> None:
        if not rows:
            return
        table = model.__table__
        columns = [c for c in table.columns if c.key in rows[0] or _column_default(c) is not None]
        values = {
            c.key: _sqlite_column(c, [row.get(c.key, _column_default(c)) for row in rows]) for c in columns
        }
        verb = "INSERT OR IGNORE" if ignore_conflicts else "INSERT"
        names = ", ".join(c.name for c in columns)
        marks = ", ".join("?" * len(columns))
        self._many(f"{verb} INTO {table.name} ({names}) VALUES ({marks})", pl.DataFrame(values))

    def update_by_ref(self, model: Any, rows: Sequence[dict[str, Any]], fixed: dict[str, Any]) -> None:
        if not rows:
            return
        names = [name for name in rows[0] if name != "ref"]
        values = {n: [sqlite_value(row[n]) for row in rows] for n in names}
        values.update({n: [sqlite_value(v)] * len(rows) for n, v in fixed.items()})
        values["ref"] = [row["ref"] for row in rows]
        assignments = ", ".join(f"{n} = ?" for n in values if n != "ref")
        sql = f"UPDATE {model.__tablename__} SET {assignments} WHERE external_ref = ?"
        self._many(sql, pl.DataFrame(values))

    def scalar(self, statement: Any) -> Any:
        compiled = statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
        rows = self.execute(str(compiled))
        return rows[0][0] if rows else None

    def insert_lines(self, lines: pl.DataFrame) -> int:
        return self._many(_insert_lines_sql(), _sqlite_lines(lines))

    def _many(self, sql: str, frame: pl.DataFrame) -> int:
        """``sql`` once per row of ``frame``, its parameters bound from Arrow buffers."""
        if not frame.height:
            return 0
        self.cursor.executemany(sql, frame.to_arrow())
        return int(self.cursor.rowcount)

    @contextmanager
    def bulk_orders(self, timings: Timings) -> Iterator[None]:
        """The transaction: the orders table without its secondary indexes while lines go in,
        the indexes built again (sorted, multi-threaded) before the commit (timed as "index",
        the commit as "commit"). An exception rolls everything back, the indexes included."""
        # synchronous and busy_timeout as the store's other connections (smartmkt.store.db);
        # no foreign-key probes per line (ids come from the store in this same transaction)
        pragmas = ("synchronous=NORMAL", "busy_timeout=10000", "foreign_keys=OFF")
        for pragma in (*pragmas, f"cache_size=-{CACHE_KIB}", "threads=2"):
            self.execute(f"PRAGMA {pragma}")
        self.execute("BEGIN IMMEDIATE")
        try:
            for index in _secondary_indexes():
                self.execute(f'DROP INDEX IF EXISTS "{index.name}"')
            yield
            with timings.time("index"):
                self.execute(f"PRAGMA cache_size=-{INDEX_CACHE_KIB}")
                for index in _secondary_indexes():
                    self.execute(str(CreateIndex(index).compile(dialect=sqlite.dialect())))
        except BaseException:
            self.execute("ROLLBACK")
            raise
        with timings.time("commit"):
            self.execute("COMMIT")


def _secondary_indexes() -> list[Index]:
    table: Any = Order.__table__
    return [index for index in table.indexes if not index.unique]


def arrow_bulk_possible(engine: Engine) -> Path | None:
    """The store's file, when a bulk import may write it through ADBC: a SQLite file, the driver
    installed, and none of the engine's connections open once its pool is emptied."""
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:":
        return None
    try:
        import adbc_driver_sqlite.dbapi  # noqa: F401
    except ImportError:
        return None
    pool = engine.pool
    if not isinstance(pool, QueuePool) or pool.checkedout():  # in use elsewhere in this process
        return None
    engine.dispose()  # closes the pooled connections (the engine opens new ones when asked)
    return Path(engine.url.database)
