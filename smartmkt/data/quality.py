"""`smartmkt data report`: the data quality of the store as it is now."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Engine, func, select

from smartmkt.data.quarantine import counts_by_rule
from smartmkt.store.db import session_scope
from smartmkt.store.models import Customer, Order, Product

OPTIONAL_FIELDS = {
    Customer: ("age", "gender", "occupation", "postal_code"),
    Product: ("year", "genres"),
    Order: ("customer_id", "line_key"),
}


def quality_report(engine: Engine, top: int = 10) -> dict[str, Any]:
    """Counts, order date range, missing rate per optional field, top categories, quarantine."""
    report: dict[str, Any] = {"tables": {}, "missing_rate": {}}
    with session_scope(engine) as session:
        for model, fields in OPTIONAL_FIELDS.items():
            table = model.__tablename__
            total = session.scalar(select(func.count()).select_from(model)) or 0
            report["tables"][table] = total
            rates = {}
            for name in fields:
                column = getattr(model, name)
                missing = (
                    session.scalar(
                        select(func.count()).select_from(model).where((column.is_(None)) | (column == ""))
                        if name == "genres"
                        else select(func.count()).select_from(model).where(column.is_(None))
                    )
                    or 0
                )
                rates[name] = round(missing / total, 4) if total else 0.0
            report["missing_rate"][table] = rates
        first, last = session.execute(select(func.min(Order.ordered_at), func.max(Order.ordered_at))).one()
        report["orders_date_range"] = [str(first) if first else None, str(last) if last else None]
        genres: Counter[str] = Counter()
        for value in session.scalars(select(Product.genres)):
            genres.update(g for g in (value or "").split("|") if g)
        report["top_categories"] = dict(genres.most_common(top))
    report["quarantine_open"] = counts_by_rule(engine)
    return report
