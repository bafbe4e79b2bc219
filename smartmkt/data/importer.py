"""Import retailers' exports into the store: read, map, clean, de-duplicate, write in batches.

Nothing is lost: every source row ends up accepted (inserted, updated or unchanged), dropped as
an exact duplicate of a row already read, or in the quarantine table with its file, line, raw
text and the rule that set it aside. Each batch is one transaction together with its quarantine
rows, so an interrupted import leaves the store at a batch boundary, and re-running it continues
from there (rows already stored are recognised by their business keys and left unchanged).

Documented rules, beyond the cell rules in smartmkt.data.values:
  duplicates.exact         a row identical to one already read in this run is dropped (kept once)
  duplicates.business_key  the same customer id, product id or order line (order id + product)
                           again in one file: the last occurrence wins
  missing.<field>          a required field is empty -> quarantine
  imputed.currency         no currency -> the store currency (USD)
  imputed.quantity         no quantity on an order line -> 1
  imputed.amount           no line amount -> unit price x quantity (from the row or the catalog)
  imputed.created_at       a customer without a sign-up time -> the import time
  reference.unknown_customer / reference.unknown_product
                           an order for a customer/product the store does not know -> quarantine,
                           or a placeholder row when the mapping says unknown_references: placeholder
  order.return             a negative quantity is a return: its amount is stored negative
  invalid.negative_amount  a negative amount on a positive quantity -> quarantine
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from smartmkt.data import values as v
from smartmkt.data.mapping import KindMapping, load_mapping, resolve
from smartmkt.data.readers import SourceRow, describe, read_rows
from smartmkt.store.db import session_scope
from smartmkt.store.models import Customer, ImportRun, Order, Product, QuarantinedRow
from smartmkt.store.repository import utcnow

Progress = Callable[[str, int], None]
OPTIONS_KEY = "_mapping"  # a quarantined row's mapping options, kept with its fields for a retry
STORE_CURRENCY = "USD"


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
    mapping: dict[str, str] = field(default_factory=dict)
    mapping_detected: bool = False
    elapsed_s: float = 0.0

    @property
    def accepted(self) -> int:
        return self.inserted + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it rebuilds a Counter from (key, value) pairs as keys
        body = {k: dict(val) if isinstance(val, Counter) else val for k, val in vars(self).items()}
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


class Rejection(Exception):
    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule, self.detail = rule, detail


@dataclass
class Cleaned:
    line: int
    key: str
    record: dict[str, Any]
    repairs: list[str]
    imputed: list[str]
    raw: str = ""  # the source text, kept for the quarantine if a later check rejects the row
    fields: dict[str, Any] = field(default_factory=dict)


def file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:32]


class Importer:
    """Imports customers, then products, then orders (so orders find what they reference)."""

    def __init__(
        self,
        engine: Engine,
        batch_size: int = 5000,
        progress: Progress | None = None,
        now: datetime | None = None,
    ) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.progress = progress
        self.now = now

    def run(self, sources: dict[str, Path], mapping_file: Path | None = None) -> ImportReport:
        start = time.perf_counter()
        specs = load_mapping(mapping_file)
        plans = []
        for kind in ("customers", "products", "orders"):
            if kind in sources:
                info = describe(sources[kind])
                plans.append((kind, info, resolve(kind, info.columns, specs.get(kind))))
        with session_scope(self.engine) as session:
            run = ImportRun(started_at=utcnow(), status="running", files=[str(p) for p in sources.values()])
            session.add(run)
            session.flush()
            run_id = run.id
        reports = []
        try:
            for kind, info, mapping in plans:
                reports.append(
                    self._import_file(
                        run_id, kind, info.path, read_rows(info, mapping.header or None), mapping
                    )
                )
        except BaseException:
            self._finish(run_id, "failed", reports, start)
            raise
        self._finish(run_id, "completed", reports, start)
        return ImportReport(run_id, reports, time.perf_counter() - start)

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
    def _import_file(
        self, run_id: int, kind: str, path: Path, rows: Iterator[SourceRow], mapping: KindMapping
    ) -> FileReport:
        start = time.perf_counter()
        report = FileReport(str(path), kind, mapping=dict(mapping.columns), mapping_detected=mapping.detected)
        sha = file_sha(path)
        seen: set[str] = set()
        batch: dict[str, Cleaned] = {}
        rejected: list[tuple[SourceRow, dict[str, Any] | None, str, str]] = []
        clean = self._cleaner(kind)
        options = {"dayfirst": mapping.dayfirst, "unknown_references": mapping.unknown_references}
        for row in rows:
            report.rows_read += 1
            report.repaired.update(row.repairs)
            if row.error or row.values is None:
                rejected.append((row, None, row.error or "format.unreadable", "the row could not be parsed"))
            else:
                fields = {f: row.values.get(col) for f, col in mapping.columns.items()}
                fields.update(mapping.constants)
                fields[OPTIONS_KEY] = options
                fingerprint = json.dumps(row.values, sort_keys=True, default=str)
                if fingerprint in seen:
                    report.duplicates["duplicates.exact"] += 1
                else:
                    seen.add(fingerprint)
                    try:
                        cleaned = clean(row.line, fields, mapping)
                    except (Rejection, v.Rejected) as exc:
                        rejected.append((row, fields, exc.rule, exc.detail))
                    else:
                        cleaned.raw, cleaned.fields = row.raw, fields
                        if cleaned.key in batch:
                            report.duplicates["duplicates.business_key"] += 1
                        batch[cleaned.key] = cleaned
                        report.repaired.update(cleaned.repairs)
                        report.imputed.update(cleaned.imputed)
            if len(batch) + len(rejected) >= self.batch_size:
                self._write(run_id, kind, path, sha, batch, rejected, mapping, report)
                batch, rejected = {}, []
        self._write(run_id, kind, path, sha, batch, rejected, mapping, report)
        report.elapsed_s = round(time.perf_counter() - start, 3)
        return report

    # --- retry ----------------------------------------------------------------------------------
    def retry_quarantine(self, kind: str | None = None) -> list[FileReport]:
        """Run open quarantined rows through the rules again against the store as it is now.

        Rows that pass are imported and their entries resolved; the rest stay quarantined.
        Rows the reader could not parse (no mapped fields) need their file fixed and re-imported.
        """
        start = time.perf_counter()
        query = select(QuarantinedRow).where(
            QuarantinedRow.resolved_at.is_(None), QuarantinedRow.fields.is_not(None)
        )
        if kind:
            query = query.where(QuarantinedRow.kind == kind)
        with session_scope(self.engine) as session:
            entries = list(session.scalars(query.order_by(QuarantinedRow.id)))
            run = ImportRun(started_at=utcnow(), status="running", files=["quarantine retry"])
            session.add(run)
            session.flush()
            run_id = run.id
        groups: dict[tuple[str, str, str], list[QuarantinedRow]] = {}
        for entry in entries:
            groups.setdefault((entry.kind, entry.source_file, entry.source_sha), []).append(entry)
        reports: list[FileReport] = []
        try:
            self._retry_groups(run_id, groups, reports)
        except BaseException:
            self._finish(run_id, "failed", reports, start)
            raise
        self._finish(run_id, "completed", reports, start)
        return reports

    def _retry_groups(
        self, run_id: int, groups: dict[tuple[str, str, str], list[QuarantinedRow]], reports: list[FileReport]
    ) -> None:
        for (entry_kind, source, sha), rows in groups.items():
            report = FileReport(source, entry_kind)
            clean = self._cleaner(entry_kind)
            batch: dict[str, Cleaned] = {}
            rejected: list[tuple[SourceRow, dict[str, Any] | None, str, str]] = []
            resolves = {}
            for entry in rows:
                fields = dict(entry.fields or {})
                options: dict[str, Any] = fields.pop(OPTIONS_KEY, None) or {}  # type: ignore[assignment]
                mapping = KindMapping(
                    entry_kind,
                    {f: f for f in fields},
                    dayfirst=bool(options.get("dayfirst", False)),
                    unknown_references=str(options.get("unknown_references", "quarantine")),
                )
                report.rows_read += 1
                source_row = SourceRow(entry.line_number, fields, entry.raw)
                try:
                    cleaned = clean(entry.line_number, fields, mapping)
                except (Rejection, v.Rejected) as exc:
                    rejected.append((source_row, fields, exc.rule, exc.detail))
                    continue
                cleaned.raw, cleaned.fields = entry.raw, entry.fields or {}
                batch[cleaned.key] = cleaned
                resolves[entry.line_number] = entry.id
            self._write(run_id, entry_kind, Path(source), sha, batch, rejected, mapping, report, resolves)
            reports.append(report)

    # --- cleaning -------------------------------------------------------------------------------
    def _cleaner(self, kind: str) -> Callable[[int, dict[str, Any], KindMapping], Cleaned]:
        return {
            "customers": self._clean_customer,
            "products": self._clean_product,
            "orders": self._clean_order,
        }[kind]

    @staticmethod
    def _required(
        fields: dict[str, Any], name: str, cleaner: Callable[[Any], v.Clean[Any]], repairs: list[str]
    ) -> Any:
        result = cleaner(fields.get(name))
        if result.value is None:
            raise Rejection(f"missing.{name}", f"{name} is empty")
        repairs.extend(result.repairs)
        return result.value

    @staticmethod
    def _optional(
        fields: dict[str, Any], name: str, cleaner: Callable[[Any], v.Clean[Any]], repairs: list[str]
    ) -> Any:
        result = cleaner(fields.get(name))
        repairs.extend(result.repairs)
        return result.value

    def _timestamp(self, dayfirst: bool) -> Callable[[Any], v.Clean[datetime]]:
        return lambda raw: v.clean_timestamp(raw, dayfirst=dayfirst, now=self.now)

    def _clean_customer(self, line: int, fields: dict[str, Any], mapping: KindMapping) -> Cleaned:
        repairs: list[str] = []
        imputed: list[str] = []
        ref = self._required(fields, "customer_id", v.clean_text, repairs)
        created = self._optional(fields, "created_at", self._timestamp(mapping.dayfirst), repairs)
        if created is None:
            created = utcnow()
            imputed.append("imputed.created_at")
        age = self._optional(fields, "age", v.clean_quantity, repairs)
        record = {
            "external_ref": ref,
            "created_at": created,
            "age": int(age) if age is not None else None,
            "gender": self._optional(fields, "gender", v.clean_text, repairs),
            "occupation": self._optional(fields, "occupation", v.clean_text, repairs),
            "postal_code": self._optional(fields, "postal_code", v.clean_text, repairs),
            "source": "import",
            "imputed": _field_names(imputed) or None,
        }
        return Cleaned(line, ref, record, repairs, imputed)

    def _clean_product(self, line: int, fields: dict[str, Any], mapping: KindMapping) -> Cleaned:
        repairs: list[str] = []
        imputed: list[str] = []
        ref = self._required(fields, "product_id", v.clean_text, repairs)
        title = self._required(fields, "title", v.clean_text, repairs)
        amount, currency = self._required(fields, "price", v.clean_money, repairs)
        currency = currency or self._optional(fields, "currency", v.clean_text, repairs)
        if not currency:
            currency = STORE_CURRENCY
            imputed.append("imputed.currency")
        genres = []
        for part in str(fields.get("category") or "").replace(";", "|").replace(",", "|").split("|"):
            genre = v.clean_category(part)
            if genre.value:
                genres.append(genre.value)
                repairs.extend(r for r in genre.repairs if r != "text.normalized")
        year = self._optional(fields, "year", v.clean_quantity, repairs)
        active = self._optional(fields, "active", v.clean_bool, repairs)
        record = {
            "external_ref": ref,
            "title": title,
            "year": int(year) if year is not None else None,
            "genres": "|".join(dict.fromkeys(genres)),
            "price_cents": _cents(amount),
            "currency": str(currency).upper()[:3],
            "active": True if active is None else active,
            "imputed": _field_names(imputed) or None,
        }
        return Cleaned(line, ref, record, repairs, imputed)

    def _clean_order(self, line: int, fields: dict[str, Any], mapping: KindMapping) -> Cleaned:
        repairs: list[str] = []
        imputed: list[str] = []
        customer = self._required(fields, "customer_id", v.clean_text, repairs)
        product = self._required(fields, "product_id", v.clean_text, repairs)
        ordered_at = self._required(fields, "ordered_at", self._timestamp(mapping.dayfirst), repairs)
        quantity = self._optional(fields, "quantity", v.clean_quantity, repairs)
        if quantity is None:
            quantity = Decimal(1)
            imputed.append("imputed.quantity")
        if quantity != quantity.to_integral_value():
            raise Rejection("invalid.number", f"quantity {quantity} is not a whole number")
        amount, currency = _signed_money(fields.get("amount"), repairs)
        unit, unit_currency = _signed_money(fields.get("unit_price"), repairs)
        if amount is None and unit is None:
            amount_missing = True
        else:
            amount_missing = False
            if amount is None:
                amount = abs(unit) * abs(quantity)  # type: ignore[arg-type]
                imputed.append("imputed.amount")
        if amount is not None and amount < 0 and quantity > 0:
            raise Rejection("invalid.negative_amount", f"amount {amount} on quantity {quantity}")
        if quantity < 0:
            repairs.append("order.return")
            if amount is not None:
                amount = -abs(amount)
        currency = currency or unit_currency or self._optional(fields, "currency", v.clean_text, repairs)
        if not currency:
            currency = STORE_CURRENCY
            imputed.append("imputed.currency")
        order_id = self._optional(fields, "order_id", v.clean_text, repairs)
        if order_id:
            key = f"o:{order_id}|{product}"
        else:
            content = f"{customer}|{product}|{ordered_at.isoformat()}|{quantity}|{amount}"
            key = "h:" + hashlib.sha1(content.encode()).hexdigest()
        record = {
            "customer_ref": customer,
            "product_ref": product,
            "ordered_at": ordered_at,
            "quantity": int(quantity),
            "amount": amount,
            "amount_missing": amount_missing,
            "unit_price": unit,
            "currency": str(currency).upper()[:3],
            "line_key": key,
            "imputed": _field_names(imputed),
        }
        return Cleaned(line, key, record, repairs, imputed)

    # --- writing --------------------------------------------------------------------------------
    def _write(
        self,
        run_id: int,
        kind: str,
        path: Path,
        sha: str,
        batch: dict[str, Cleaned],
        rejected: list[tuple[SourceRow, dict[str, Any] | None, str, str]],
        mapping: KindMapping,
        report: FileReport,
        resolves: dict[int, int] | None = None,
    ) -> None:
        """One transaction: the batch's accepted rows and its quarantined rows, or nothing.

        ``resolves`` (line -> quarantine id), on a retry: the entries whose rows are now accepted
        are marked resolved in the same transaction.
        """
        if not batch and not rejected:
            return
        with session_scope(self.engine) as session:
            if kind == "orders":
                rejected = rejected + self._write_orders(session, batch, mapping, report)
            else:
                self._upsert(session, Customer if kind == "customers" else Product, batch, report)
            self._quarantine(session, run_id, kind, path, sha, rejected, report)
            if resolves:
                still = {row.line for row, *_ in rejected}
                done = [qid for line, qid in resolves.items() if line not in still]
                session.execute(
                    update(QuarantinedRow).where(QuarantinedRow.id.in_(done)).values(resolved_at=utcnow())
                )
        if self.progress:
            self.progress(str(path), len(batch) + len(rejected))

    @staticmethod
    def _upsert(session: Session, model: Any, batch: dict[str, Cleaned], report: FileReport) -> None:
        existing = {
            row.external_ref: row
            for row in session.scalars(select(model).where(model.external_ref.in_(list(batch))))
        }
        for ref, cleaned in batch.items():
            row = existing.get(ref)
            if row is None:
                session.add(model(**cleaned.record))
                report.inserted += 1
                continue
            changes = {
                k: val
                for k, val in cleaned.record.items()
                if k not in ("created_at", "source", "imputed") and getattr(row, k) != val
            }
            if changes:
                for key, val in changes.items():
                    setattr(row, key, val)
                report.updated += 1
            else:
                report.unchanged += 1
        session.flush()

    def _write_orders(
        self, session: Session, batch: dict[str, Cleaned], mapping: KindMapping, report: FileReport
    ) -> list[tuple[SourceRow, dict[str, Any] | None, str, str]]:
        records = [c.record for c in batch.values()]
        customers = _ids(session, Customer, {r["customer_ref"] for r in records})
        products = {
            p.external_ref: p
            for p in session.scalars(
                select(Product).where(Product.external_ref.in_({r["product_ref"] for r in records}))
            )
        }
        existing = set(session.scalars(select(Order.line_key).where(Order.line_key.in_(list(batch)))))
        rejected: list[tuple[SourceRow, dict[str, Any] | None, str, str]] = []
        for cleaned in batch.values():
            record = cleaned.record
            if record["line_key"] in existing:
                report.unchanged += 1
                continue
            customer_id = customers.get(record["customer_ref"])
            product = products.get(record["product_ref"])
            placeholder = mapping.unknown_references == "placeholder"
            if customer_id is None and placeholder:
                customer = Customer(
                    external_ref=record["customer_ref"], created_at=record["ordered_at"], source="placeholder"
                )
                session.add(customer)
                session.flush()
                customers[record["customer_ref"]] = customer_id = customer.id
                report.repaired["reference.placeholder_customer"] += 1
            if product is None and placeholder:
                unit = record["unit_price"] or (
                    abs(record["amount"]) / max(1, abs(record["quantity"]))
                    if record["amount"] is not None
                    else Decimal(0)
                )
                product = Product(
                    external_ref=record["product_ref"],
                    title=f"Product {record['product_ref']}",
                    genres="",
                    price_cents=_cents(abs(unit)),
                    currency=record["currency"],
                    active=True,
                    imputed=["title", "price"],
                )
                session.add(product)
                session.flush()
                products[record["product_ref"]] = product
                report.repaired["reference.placeholder_product"] += 1
            if customer_id is None or product is None:
                rule = "reference.unknown_customer" if customer_id is None else "reference.unknown_product"
                ref = record["customer_ref"] if customer_id is None else record["product_ref"]
                row = SourceRow(cleaned.line, None, cleaned.raw, None)
                detail = f"{rule.split('_', 1)[1]} {ref!r} is not in the store"
                rejected.append((row, cleaned.fields, rule, detail))
                continue
            amount = record["amount"]
            imputed = list(record["imputed"])
            if record["amount_missing"]:
                amount = Decimal(product.price_cents) / 100 * record["quantity"]
                imputed.append("amount")
                report.imputed["imputed.amount"] += 1
            unit_cents = product.price_cents if record["unit_price"] is None else _cents(record["unit_price"])
            session.add(
                Order(
                    customer_id=customer_id,
                    product_id=product.id,
                    quantity=record["quantity"],
                    unit_price_cents=unit_cents,
                    discount_pct=0,
                    amount_cents=_cents(amount),
                    ordered_at=record["ordered_at"],
                    channel="import",
                    line_key=record["line_key"],
                    imputed=imputed or None,
                )
            )
            report.inserted += 1
        session.flush()
        return rejected

    @staticmethod
    def _quarantine(
        session: Session,
        run_id: int,
        kind: str,
        path: Path,
        sha: str,
        rejected: list[tuple[SourceRow, dict[str, Any] | None, str, str]],
        report: FileReport,
    ) -> None:
        if not rejected:
            return
        lines = {row.line for row, *_ in rejected}
        already = set(
            session.scalars(
                select(QuarantinedRow.line_number).where(
                    QuarantinedRow.source_sha == sha,
                    QuarantinedRow.kind == kind,
                    QuarantinedRow.line_number.in_(lines),
                )
            )
        )
        for row, fields, rule, detail in rejected:
            report.quarantined[rule] += 1
            if row.line in already:
                continue  # quarantined by an earlier run of the same file
            already.add(row.line)
            session.add(
                QuarantinedRow(
                    run_id=run_id,
                    kind=kind,
                    source_file=str(path),
                    source_sha=sha,
                    line_number=row.line,
                    raw=row.raw,
                    fields=_jsonable(fields) if fields else None,
                    rule=rule,
                    detail=detail,
                    created_at=utcnow(),
                )
            )


def _signed_money(raw: Any, repairs: list[str]) -> tuple[Decimal | None, str | None]:
    """Like clean_money, but a leading minus is kept (returns and refunds are negative)."""
    negative = isinstance(raw, str) and raw.strip().startswith("-")
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw < 0:
        raw, negative = -raw, True
    result = v.clean_money(raw.strip().removeprefix("-") if isinstance(raw, str) else raw)
    repairs.extend(result.repairs)
    if result.value is None:
        return None, None
    amount, currency = result.value
    return (-amount if negative else amount), currency


def _field_names(imputed: list[str]) -> list[str]:
    """ "imputed.currency" -> "currency": the store's ``imputed`` column names fields, not rules."""
    return [rule.split(".", 1)[1] for rule in imputed]


def _cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1)))


def _ids(session: Session, model: type[Customer], refs: set[str]) -> dict[str, int]:
    return {
        ref: cid
        for ref, cid in session.execute(
            select(model.external_ref, model.id).where(model.external_ref.in_(refs))
        )
    }


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values, default=str))
