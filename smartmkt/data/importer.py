"""Import retailers' exports into the store: read, map, clean, de-duplicate, write, in chunks.

Files are described (smartmkt.data.formats), read as columnar chunks (smartmkt.data.readers),
cleaned by vectorised rules (smartmkt.data.cleaning) and written a chunk per transaction
(smartmkt.data.loading), so memory stays flat whatever the file's size. A large orders file into
SQLite is written in a single transaction instead, with the orders indexes rebuilt at the end
(see ``bulk_rows``).

Nothing is lost: every source row ends up accepted (inserted, updated or unchanged), dropped as
an exact duplicate of a row already read, or in the quarantine table with its file, line, raw
text and the rule that set it aside. An interrupted import leaves the store at a chunk boundary
(or, for a bulk import, as it was), and re-running it continues from there: rows already stored
are recognised by their business keys and left unchanged.

Duplicate rules:
  duplicates.exact         a row identical to one already read in this run: dropped (kept once)
  duplicates.business_key  customers and products: the same id again, the last row wins;
                           orders: the same order line (order id + product, or the same content
                           when there is no order id) again in one import: the first one is kept
                           and the later one quarantined, so a person sees the conflict
Reference rules (orders):
  reference.unknown_customer / reference.unknown_product
                           an order for a customer/product the store does not know -> quarantine,
                           or a placeholder row when the mapping says unknown_references: placeholder
The cell and row rules are listed in smartmkt.data.values and smartmkt.data.cleaning.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, func, insert, select, update

from smartmkt.data.cleaning import Context
from smartmkt.data.formats import describe
from smartmkt.data.loading import OrderWriter, Rejected, quarantine, upsert_entities
from smartmkt.data.mapping import FIELDS, KindMapping, load_mapping, resolve, says_currency
from smartmkt.data.prefetch import prefetch, prefetch_process
from smartmkt.data.preparing import ChunkPreparer, Prepared, prepared_chunks
from smartmkt.data.readers import (
    BOOKKEEPING,
    CHUNK_ROWS,
    ERROR,
    LINE,
    SourceInfo,
    SourceRow,
    read_chunks,
    rows_frame,
)
from smartmkt.data.timings import Timings
from smartmkt.data.writers import ArrowSQLite, Rows, arrow_bulk_possible
from smartmkt.store.clock import utcnow
from smartmkt.store.db import session_scope
from smartmkt.store.models import ImportRun, Order, QuarantinedRow

Progress = Callable[[str, int], None]
OPTIONS_KEY = "_mapping"  # a quarantined row's mapping, kept with its fields for a retry
BULK_ROWS = 1_000_000  # an orders file this big (and bigger than the table) loads in bulk
PROCESS_ROWS = 200_000  # a file this big is read and cleaned in a second process (not in bulk)


@dataclass
class FileReport:
    file: str
    kind: str
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    imputed: Counter[str] = field(default_factory=Counter)
    python_rows: int = 0  # rows with a cell no columnar expression read (the row rule did)
    mapping: dict[str, str] = field(default_factory=dict)
    mapping_detected: bool = False
    bulk: bool = False
    elapsed_s: float = 0.0
    # seconds per stage: read, dedupe, clean (clean.<family>) in the preparing process or thread;
    # wait (the writer waiting for a prepared chunk), write, index, commit in the writer
    timings: Timings = field(default_factory=Timings)

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it rebuilds a Counter from (key, value) pairs as keys
        body = {k: dict(val) if isinstance(val, Counter) else val for k, val in vars(self).items()}
        body["timings"] = self.timings.rounded()
        body["accepted"] = self.accepted
        body["quarantined_total"] = sum(self.quarantined.values())
        body["duplicates_dropped"] = sum(self.duplicates.values())
        return body


@dataclass
class ImportReport:
    run_id: int
    files: list[FileReport]
    elapsed_s: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "elapsed_s": round(self.elapsed_s, 3),
            "files": [f.as_dict() for f in self.files],
        }


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:32]


@dataclass
class _FileState:
    """What one file's import carries from chunk to chunk."""

    run_id: int
    kind: str
    source: str
    sha: str
    mapping: KindMapping
    ctx: Context
    report: FileReport
    orders: OrderWriter | None = None


class CurrencyUnknown(ValueError):
    """A products or orders file that names no currency, imported without the shop's currency:
    nothing was written (``smartmkt data import`` asks, or says how to give it)."""


class Importer:
    """Imports customers, then products, then orders (so orders find what they reference).

    ``create_missing``: the customers and products an orders file names that the store does not
    have are created from its lines (the mapping's ``unknown_references: placeholder``), as an
    orders-only export needs; else they are quarantined.

    ``currency`` is the shop's (SMARTMKT_CURRENCY): what a price or order line that names none
    is in (imputed.currency). None: not known, so a products or orders file must say its
    currency (a column, or a constant in the mapping), else ``run`` raises CurrencyUnknown
    before it writes anything. A file's own currency always wins."""

    def __init__(
        self,
        engine: Engine,
        batch_size: int = CHUNK_ROWS,
        progress: Progress | None = None,
        now: datetime | None = None,
        bulk_rows: int = BULK_ROWS,
        process_rows: int = PROCESS_ROWS,
        currency: str | None = "USD",
        create_missing: bool = False,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.progress = progress
        self.now = now
        self.bulk_rows = bulk_rows
        self.process_rows = process_rows
        self.currency = currency
        self.create_missing = create_missing

    def _context(self, mapping: KindMapping) -> Context:
        # a blank cell in a file's currency column: the shop's currency (USD if not known)
        return Context(
            mapping, now=self.now or utcnow(), imported_at=utcnow(), currency=self.currency or "USD"
        )

    def run(self, sources: dict[str, Path], mapping_file: Path | None = None) -> ImportReport:
        start = time.perf_counter()
        specs = load_mapping(mapping_file)
        plans = []
        for kind in ("customers", "products", "orders"):
            if kind in sources:
                info = describe(sources[kind])
                mapping = resolve(kind, info.columns, specs.get(kind))
                if self.create_missing and kind == "orders":
                    mapping = replace(mapping, unknown_references="placeholder")
                plans.append((kind, info, mapping))
        silent = [
            str(info.path)
            for kind, info, mapping in plans
            if kind != "customers" and not says_currency(mapping)
        ]
        if self.currency is None and silent:
            raise CurrencyUnknown(f"{', '.join(silent)} does not say which currency its prices are in")
        run_id = self._start_run([str(p) for p in sources.values()])
        reports: list[FileReport] = []
        try:
            for kind, info, mapping in plans:
                reports.append(self._import_file(run_id, kind, info, mapping))
        except BaseException:
            self._finish(run_id, "failed", reports, start)
            raise
        self._finish(run_id, "completed", reports, start)
        return ImportReport(run_id, reports, time.perf_counter() - start)

    def _start_run(self, files: list[str]) -> int:
        with session_scope(self.engine) as session:
            run = ImportRun(started_at=utcnow(), status="running", files=files)
            session.add(run)
            session.flush()
            return run.id

    def _finish(self, run_id: int, status: str, reports: list[FileReport], start: float) -> None:
        with session_scope(self.engine) as session:
            session.execute(
                update(ImportRun)
                .where(ImportRun.id == run_id)
                .values(
                    status=status,
                    finished_at=utcnow(),
                    report={
                        "files": [r.as_dict() for r in reports],
                        "elapsed_s": time.perf_counter() - start,
                    },
                )
            )

    # --- one file -----------------------------------------------------------------------------
    def _import_file(self, run_id: int, kind: str, info: SourceInfo, mapping: KindMapping) -> FileReport:
        start = time.perf_counter()
        report = FileReport(
            str(info.path), kind, mapping=dict(mapping.columns), mapping_detected=mapping.detected
        )
        with report.timings.time("setup"):  # the file's hash and size, the preparing process
            state = _FileState(
                run_id, kind, str(info.path), file_sha(info.path), mapping, self._context(mapping), report
            )
            rows = estimate_rows(info)
            bulk = self._bulk_store(rows) if kind == "orders" else None
            report.bulk = bulk is not None
            args = (info, state.ctx, self.batch_size)
            # A big file is read and cleaned in a second process, off the writer's GIL, unless
            # the writer is the bulk import's ADBC connection: its work is in C, without the GIL,
            # and a thread saves pickling each prepared chunk (a 1M-line file: 8.6 s, not 10.0)
            if rows >= self.process_rows and not report.bulk:
                chunks = prefetch_process(prepared_chunks, args)
            else:
                chunks = prefetch(prepared_chunks(*args), depth=1)  # memory: one chunk waits
        self._write_chunks(state, chunks, bulk=bulk)
        report.elapsed_s = round(time.perf_counter() - start, 3)
        return report

    def _bulk_store(self, estimate: int) -> Path | None:
        """The SQLite file a big orders file (``estimate`` rows, at least as many as the table
        holds already) is written to in bulk through ADBC (smartmkt.data.writers.ArrowSQLite),
        or None: written chunk by chunk."""
        if self.engine.dialect.name != "sqlite" or estimate < self.bulk_rows:
            return None
        with session_scope(self.engine) as session:
            stored = session.scalar(select(func.count()).select_from(Order)) or 0
        return arrow_bulk_possible(self.engine) if estimate >= stored else None

    def _write_chunks(
        self,
        state: _FileState,
        chunks: Iterable[Prepared],
        bulk: Path | None = None,
        resolves: dict[int, int] | None = None,
    ) -> None:
        """One transaction per chunk, or, given the store's file (``bulk``), one for all of them."""
        timings = state.report.timings
        with ExitStack() as outer:
            shared: ArrowSQLite | None = None
            if bulk is not None:  # one transaction for the whole file, on the bulk import's own connection
                shared = ArrowSQLite(bulk)
                outer.callback(shared.close)
                outer.enter_context(shared.bulk_orders(timings))  # times "index" and "commit"
            for prepared in timings.each(chunks, "wait"):
                if shared is not None:
                    with timings.time("write"):
                        self._store(shared, state, prepared, resolves)
                else:  # a transaction per chunk (an exception leaves it uncommitted: rolled back)
                    with self.engine.connect() as conn:
                        with timings.time("write"):
                            conn.begin()
                            self._store(conn, state, prepared, resolves)
                        with timings.time("commit"):
                            conn.commit()
                if self.progress:
                    self.progress(state.source, prepared.rows)

    def _store(
        self, conn: Connection | Rows, state: _FileState, prepared: Prepared, resolves: dict[int, int] | None
    ) -> list[Rejected]:
        """The chunk's writes, in the caller's transaction; then its counts join the report.
        Returns the rows quarantined (by the cleaning rules or when written)."""
        report = state.report
        rejected = list(prepared.rejected)
        if state.kind == "orders":
            if state.orders is None:
                state.orders = OrderWriter(conn, state.mapping.unknown_references == "placeholder")
            counts = state.orders.write(conn, prepared.accepted)
            rejected += counts.rejected
        else:
            if not isinstance(conn, Connection):
                raise TypeError("customers and products are written through SQLAlchemy, never in bulk")
            counts = upsert_entities(conn, state.kind, prepared.accepted)
        self._quarantine(conn, state, prepared.fields, rejected)
        if resolves:
            if not isinstance(conn, Connection):
                raise TypeError("a retry is written through SQLAlchemy, never in bulk")
            still = {r.line for r in rejected}
            present = set(prepared.fields[LINE].to_list())
            done = [qid for line, qid in resolves.items() if line not in still and line in present]
            if done:
                conn.execute(
                    update(QuarantinedRow).where(QuarantinedRow.id.in_(done)).values(resolved_at=utcnow())
                )
        report.rows_read += prepared.rows
        report.python_rows += prepared.python_rows
        report.duplicates.update(prepared.duplicates)
        report.repaired.update(prepared.repaired)
        report.repaired.update(counts.repaired)
        report.imputed.update(prepared.imputed)
        report.timings.merge(prepared.timings)
        report.imputed.update({k: n for k, n in counts.imputed.items() if n})
        report.inserted += counts.inserted
        report.updated += counts.updated
        report.unchanged += counts.unchanged
        report.quarantined.update(Counter(r.rule for r in rejected))
        return rejected

    # --- rows sent through the shop API -----------------------------------------------------
    def import_rows(
        self, kind: str, rows: list[dict[str, Any]], source: str, channel: str = "api"
    ) -> RowsImport:
        """Rows of one kind given as store fields (the shop API's JSON bodies) through the same
        rules as a file's, in one transaction: the import run that records them, their writes
        and their quarantine entries commit together or not at all. ``source`` names the sender
        in the import run and the quarantine. The same rows sent again change nothing (rows
        already stored are recognised by their business keys, quarantine entries by the rows'
        content hash and position). Order lines are stored with ``channel``."""
        start = time.perf_counter()
        body = json.dumps(rows, sort_keys=True, default=str, ensure_ascii=False)
        sha = hashlib.sha256(f"{kind}\n{body}".encode()).hexdigest()
        mapping = KindMapping.from_options(kind, {name: name for name in FIELDS[kind]}, {})
        report = FileReport(source, kind)
        ctx = self._context(mapping)
        chunk = rows_frame(
            [
                SourceRow(
                    number, {name: row.get(name) for name in FIELDS[kind]}, json.dumps(row, default=str)
                )
                for number, row in enumerate(rows, start=1)
            ]
        )
        preparer = ChunkPreparer(ctx)
        try:
            prepared = preparer.prepare(chunk)
        finally:
            preparer.close()
        with self.engine.begin() as conn:
            run_id = conn.execute(
                insert(ImportRun)
                .values(started_at=utcnow(), status="running", files=[source])
                .returning(ImportRun.id)
            ).scalar_one()
            state = _FileState(run_id, kind, source, sha, mapping, ctx, report)
            if kind == "orders":  # only the customers and products these lines name are read
                state.orders = OrderWriter(conn, False, prepared.accepted, channel=channel)
            rejected = self._store(conn, state, prepared, None)
            report.elapsed_s = round(time.perf_counter() - start, 3)
            conn.execute(
                update(ImportRun)
                .where(ImportRun.id == run_id)
                .values(status="completed", finished_at=utcnow(), report={"files": [report.as_dict()]})
            )
        accepted = set(prepared.accepted[LINE].to_list()) - {r.line for r in rejected}
        return RowsImport(run_id, report, _outcomes(len(rows), accepted, rejected))

    @staticmethod
    def _quarantine(
        conn: Connection | Rows, state: _FileState, fields: pl.DataFrame, rejected: list[Rejected]
    ) -> None:
        if not rejected:
            return
        mapped = [*state.mapping.columns, *state.mapping.constants]
        by_line = {
            row[LINE]: {k: row[k] for k in mapped if k in row}
            for row in fields.filter(pl.col(LINE).is_in([r.line for r in rejected])).iter_rows(named=True)
        }
        options = state.mapping.options()
        for entry in rejected:
            entry.fields = {**by_line.get(entry.line, {}), OPTIONS_KEY: options}
        quarantine(conn, state.run_id, state.kind, state.source, state.sha, rejected, utcnow())

    # --- retry ----------------------------------------------------------------------------------
    def retry_quarantine(self, kind: str | None = None) -> list[FileReport]:
        """Run open quarantined rows through the rules again against the store as it is now.

        Rows that pass are imported and their entries resolved; the rest stay quarantined.
        Rows the reader could not parse have no fields: fix them with ``retry_fixed``.
        """
        query = select(QuarantinedRow).where(QuarantinedRow.resolved_at.is_(None))
        if kind:
            query = query.where(QuarantinedRow.kind == kind)
        with session_scope(self.engine) as session:
            entries = [e for e in session.scalars(query.order_by(QuarantinedRow.id)) if _has_fields(e.fields)]
        rows = [(e, {k: v for k, v in (e.fields or {}).items() if k != OPTIONS_KEY}) for e in entries]
        return self._retry(rows, "quarantine retry")

    def retry_fixed(self, path: Path) -> list[FileReport]:
        """Corrected rows for quarantined entries: a file (any readable format) with a
        ``quarantine_id`` column and the original file's columns, read with the original mapping."""
        info = describe(path)
        if "quarantine_id" not in info.columns:
            raise ValueError(f"{path.name}: needs a quarantine_id column (and the original file's columns)")
        fixes: dict[int, dict[str, Any]] = {}
        for chunk in read_chunks(info):
            for row in chunk.filter(pl.col(ERROR).is_null()).drop(BOOKKEEPING).iter_rows(named=True):
                try:
                    fixes[int(str(row.pop("quarantine_id")).strip())] = row
                except ValueError as exc:
                    raise ValueError(f"{path.name}: quarantine_id must be a number ({exc})") from exc
        with session_scope(self.engine) as session:
            entries = {
                e.id: e
                for e in session.scalars(
                    select(QuarantinedRow).where(
                        QuarantinedRow.id.in_(list(fixes)), QuarantinedRow.resolved_at.is_(None)
                    )
                )
            }
        missing = sorted(set(fixes) - set(entries))
        if missing:
            raise ValueError(f"no open quarantine entries with ids {missing[:10]}")
        rows = []
        for qid, values in fixes.items():
            options: dict[str, Any] = (entries[qid].fields or {}).get(OPTIONS_KEY) or {}  # type: ignore[assignment]
            columns: dict[str, str] = options.get("columns") or {}
            mapped = {f: values.get(col) for f, col in columns.items()}
            mapped.update(options.get("constants") or {})
            rows.append((entries[qid], mapped))
        return self._retry(rows, f"fixed rows from {path}")

    def _retry(self, rows: list[tuple[QuarantinedRow, dict[str, Any]]], label: str) -> list[FileReport]:
        start = time.perf_counter()
        run_id = self._start_run([label])
        groups: dict[tuple[str, str, str, str], list[tuple[QuarantinedRow, dict[str, Any]]]] = {}
        for entry, values in rows:
            options = (entry.fields or {}).get(OPTIONS_KEY) or {}
            key = (entry.kind, entry.source_file, entry.source_sha, json.dumps(options, sort_keys=True))
            groups.setdefault(key, []).append((entry, values))
        reports: list[FileReport] = []
        try:
            for (kind, source, sha, options_json), members in groups.items():
                reports.append(
                    self._retry_group(run_id, kind, source, sha, json.loads(options_json), members)
                )
        except BaseException:
            self._finish(run_id, "failed", reports, start)
            raise
        self._finish(run_id, "completed", reports, start)
        return reports

    def _retry_group(
        self,
        run_id: int,
        kind: str,
        source: str,
        sha: str,
        options: dict[str, Any],
        members: list[tuple[QuarantinedRow, dict[str, Any]]],
    ) -> FileReport:
        names = sorted({k for _, values in members for k in values} & set(FIELDS[kind]))
        mapping = KindMapping.from_options(kind, {f: f for f in names}, options)
        report = FileReport(source, kind)
        state = _FileState(run_id, kind, source, sha, mapping, self._context(mapping), report)
        preparer = ChunkPreparer(state.ctx, drop_exact=False)
        chunk = rows_frame(
            [SourceRow(e.line_number, {n: values.get(n) for n in names}, e.raw) for e, values in members]
        )
        resolves = {e.line_number: e.id for e, _ in members}
        self._write_chunks(state, [preparer.prepare(chunk)], resolves=resolves)
        return report


@dataclass(frozen=True)
class RowOutcome:
    """Where one row of an API request went: ``accepted`` (stored, or already stored the
    same), ``quarantined`` (with the rule that set it aside and why), or ``duplicate`` (a copy of
    another row of the same request, which was kept instead)."""

    index: int  # 0-based position in the request
    status: str
    rule: str | None = None
    detail: str | None = None


@dataclass
class RowsImport:
    """What ``Importer.import_rows`` did: its import run, the counts, each row's outcome."""

    run_id: int
    report: FileReport
    rows: list[RowOutcome]


def _outcomes(count: int, accepted: set[int], rejected: list[Rejected]) -> list[RowOutcome]:
    """Each row's outcome by its 1-based line: rejected first, then accepted, else a duplicate."""
    why = {r.line: r for r in rejected}
    outcomes = []
    for line in range(1, count + 1):
        if line in why:
            outcomes.append(RowOutcome(line - 1, "quarantined", why[line].rule, why[line].detail))
        elif line in accepted:
            outcomes.append(RowOutcome(line - 1, "accepted"))
        else:
            outcomes.append(
                RowOutcome(
                    line - 1,
                    "duplicate",
                    "duplicates",
                    "the same row, or a later one for the same id, is in this request",
                )
            )
    return outcomes


def _has_fields(fields: dict[str, Any] | None) -> bool:
    return bool(fields) and any(k != OPTIONS_KEY for k in fields or {})


def estimate_rows(info: SourceInfo) -> int:
    """Rows in a file, estimated from its size and the first lines (exact for Parquet)."""
    if info.format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(info.path).metadata.num_rows)
    size = info.path.stat().st_size
    with info.path.open("rb") as handle:
        head = handle.read(1 << 16)
    lines = max(1, head.count(b"\n"))
    return int(size / (len(head) / lines)) if head else 0
