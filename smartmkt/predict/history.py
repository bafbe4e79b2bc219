"""Customers' purchase histories from the store, as the models read them.

Purchases are counted per customer-day (several order lines on one day are one purchase), as
the buy-till-you-die literature does for CDNOW: a customer's "frequency" is the number of
repeat purchase days. Time is measured in weeks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
from sqlalchemy import Engine, select

from smartmkt.store.db import session_scope
from smartmkt.store.models import Order

WEEK_S = 7 * 86_400


def purchase_days(engine: Engine) -> pl.DataFrame:
    """The store's orders behind ``engine``, one row per customer and day with purchases:
    customer_id, day (UTC date), quantity, amount."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(Order.customer_id, Order.ordered_at, Order.quantity, Order.amount_cents).where(
                Order.customer_id.is_not(None)
            )
        ).all()
    frame = pl.DataFrame(
        rows,
        schema={
            "customer_id": pl.Int64,
            "ordered_at": pl.Datetime("us"),
            "quantity": pl.Int64,
            "amount": pl.Int64,
        },
        orient="row",
    )
    return (
        frame.with_columns(pl.col("ordered_at").dt.date().alias("day"))
        .group_by("customer_id", "day")
        .agg(pl.col("quantity").sum(), (pl.col("amount").sum() / 100).alias("amount"))
        .sort("customer_id", "day")
    )


@dataclass(frozen=True)
class Window:
    """Features from purchases before ``cutoff``; labels from [cutoff, cutoff + horizon)."""

    cutoff: datetime
    horizon_weeks: float

    @property
    def end(self) -> datetime:
        from datetime import timedelta

        return self.cutoff + timedelta(weeks=self.horizon_weeks)


def _weeks(column: str, since: datetime) -> pl.Expr:
    return (pl.col(column).cast(pl.Datetime("us")) - pl.lit(since)).dt.total_seconds() / WEEK_S


def rfm(days: pl.DataFrame, cutoff: datetime) -> pl.DataFrame:
    """Per customer seen before ``cutoff``: frequency (repeat days), recency and T (weeks, as
    BG/NBD defines them), monetary (mean spend per purchase day), quantity per day."""
    before = days.filter(pl.col("day").cast(pl.Datetime("us")) < pl.lit(cutoff))
    return (
        before.group_by("customer_id")
        .agg(
            (pl.len() - 1).alias("frequency"),
            pl.col("day").min().alias("first"),
            pl.col("day").max().alias("last"),
            pl.col("amount").mean().alias("monetary"),
            pl.col("quantity").mean().alias("quantity"),
        )
        .with_columns(
            (
                (
                    pl.col("last").cast(pl.Datetime("us")) - pl.col("first").cast(pl.Datetime("us"))
                ).dt.total_seconds()
                / WEEK_S
            ).alias("recency"),
            (-_weeks("first", cutoff)).alias("T"),
        )
        .sort("customer_id")
    )


def rfm_features(summary: pl.DataFrame) -> np.ndarray:
    """Log frequency, recency, T, weeks since the last purchase and monetary, per ``rfm`` row."""
    return summary.select(
        pl.col("frequency").log1p(),
        pl.col("recency").log1p(),
        pl.col("T").log1p(),
        (pl.col("T") - pl.col("recency")).log1p().alias("since_last"),
        pl.col("monetary").clip(lower_bound=0).log1p(),
    ).to_numpy()


def labels(days: pl.DataFrame, customers: pl.Series, window: Window) -> pl.DataFrame:
    """Purchase days and spend in the window, for each of ``customers`` (0 when none)."""
    inside = days.filter(
        (pl.col("day").cast(pl.Datetime("us")) >= pl.lit(window.cutoff))
        & (pl.col("day").cast(pl.Datetime("us")) < pl.lit(window.end))
    )
    counts = inside.group_by("customer_id").agg(
        pl.len().alias("purchases"), pl.col("amount").sum().alias("spend")
    )
    return (
        pl.DataFrame({"customer_id": customers})
        .join(counts, on="customer_id", how="left", maintain_order="left")
        .with_columns(pl.col("purchases").fill_null(0), pl.col("spend").fill_null(0.0))
    )


def sequences(days: pl.DataFrame, customers: pl.Series, cutoff: datetime, length: int) -> np.ndarray:
    """The last ``length`` purchase days before ``cutoff`` per customer, oldest first, as
    (gap since the previous purchase, weeks before the cutoff, log spend, log quantity),
    left-padded with zeros; shape (customers, length, 4)."""
    before = days.filter(pl.col("day").cast(pl.Datetime("us")) < pl.lit(cutoff)).with_columns(
        (-_weeks("day", cutoff)).alias("age")
    )
    before = before.with_columns(
        (pl.col("age").shift(1).over("customer_id") - pl.col("age")).fill_null(0.0).alias("gap")
    )
    recent = before.group_by("customer_id", maintain_order=True).tail(length)
    out = np.zeros((len(customers), length, 4), dtype=np.float32)
    index = {int(c): i for i, c in enumerate(customers.to_list())}
    grouped = recent.group_by("customer_id", maintain_order=True).agg("gap", "age", "amount", "quantity")
    for cid, gap, age, amount, quantity in grouped.iter_rows():
        row = index.get(int(cid))
        if row is None:
            continue
        n = len(gap)
        block = np.stack(
            [
                np.log1p(gap),
                np.log1p(age),
                np.log1p(np.maximum(amount, 0)),
                np.log1p(np.maximum(quantity, 0)),
            ],
            axis=1,
        )
        out[row, length - n :, :] = block
    return out


def weekly_repeat_purchases(days: pl.DataFrame, start: datetime, weeks: int) -> np.ndarray:
    """Repeat purchase days (each customer's first purchase day left out) in each of the
    ``weeks`` weeks from ``start``: the actual line of a tracking plot."""
    first = days.group_by("customer_id").agg(pl.col("day").min().alias("first"))
    repeat = days.join(first, on="customer_id").filter(pl.col("day") > pl.col("first"))
    week = (_weeks("day", start).floor()).cast(pl.Int64)
    counts = repeat.select(week.alias("week")).filter((pl.col("week") >= 0) & (pl.col("week") < weeks))
    return np.bincount(counts["week"].to_numpy(), minlength=weeks).astype(float)
