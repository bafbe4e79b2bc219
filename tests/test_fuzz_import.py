"""Fuzzing the import's file readers (smartmkt.data.formats, smartmkt.data.readers) with
hypothesis, beyond the cell rules and the delimited reader that tests/test_data_fuzz.py covers:
whatever bytes a shop's export holds, in any of the six formats, ``describe`` and reading it
(row by row and in chunks) give rows or a ``ReaderError`` that names the file; never another
exception. Inputs: arbitrary bytes, and real small files in each format (written here) truncated
or with bytes overwritten.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartmkt.data.formats import FORMATS, describe
from smartmkt.data.readers import ReaderError, read_chunks, read_rows

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ROWS = [
    {"Order ID": "A-1", "Cust ID": "42", "SKU": "94", "Order Date": "2024-03-01", "Amount": "$7.99"},
    {"Order ID": "A-2", "Cust ID": "7", "SKU": "1", "Order Date": "01/03/2024", "Amount": "1.234,50 EUR"},
    {"Order ID": "A-3", "Cust ID": "", "SKU": "x", "Order Date": "", "Amount": None},
]


def _real_files() -> dict[str, bytes]:
    from openpyxl import Workbook

    frame = pl.DataFrame(ROWS)
    parquet, xlsx = io.BytesIO(), io.BytesIO()
    frame.write_parquet(parquet)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(list(ROWS[0]))
    for row in ROWS:
        sheet.append(list(row.values()))
    book.save(xlsx)
    return {
        "delimited": frame.write_csv().encode(),
        "whitespace": b"id date quantity amount\n42 19970101 2 29.33\n7 19970102 1 11.77\n",
        "jsonl": "\n".join(json.dumps(r) for r in ROWS).encode(),
        "json": json.dumps(ROWS).encode(),
        "parquet": parquet.getvalue(),
        "xlsx": xlsx.getvalue(),
    }


REAL = _real_files()


SUFFIX = {"delimited": ".csv", "whitespace": ".txt", "jsonl": ".jsonl", "json": ".json"}


def read_all(folder: Path, data: bytes, fmt: str) -> None:
    path = folder / f"export{SUFFIX.get(fmt, '.' + fmt)}"
    path.write_bytes(data)
    try:
        info = describe(path, fmt)
        rows = list(read_rows(info))
        chunks = list(read_chunks(info, chunk_rows=2))
    except ReaderError as exc:
        assert path.name in str(exc) or "empty" in str(exc), exc
        return
    # the chunked reader (the import's fast path) and the row reader see the same records
    assert sum(chunk.height for chunk in chunks) == len(rows)
    assert all(r.values is not None or r.error for r in rows)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_real_files_read(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"orders{SUFFIX.get(fmt, '.' + fmt)}"
    path.write_bytes(REAL[fmt])
    info = describe(path, fmt)
    assert len([r for r in read_rows(info) if r.values]) == (2 if fmt == "whitespace" else 3)
    assert sum(chunk.height for chunk in read_chunks(info, chunk_rows=2)) == (2 if fmt == "whitespace" else 3)


@FUZZ
@given(st.sampled_from(FORMATS), st.binary(max_size=2048))
def test_arbitrary_bytes_in_every_format(tmp_path: Path, fmt: str, data: bytes) -> None:
    read_all(tmp_path, data, fmt)


@FUZZ
@given(st.sampled_from(FORMATS), st.data())
def test_truncated_files(tmp_path: Path, fmt: str, data: st.DataObject) -> None:
    real = REAL[fmt]
    read_all(tmp_path, real[: data.draw(st.integers(0, len(real)))], fmt)


@FUZZ
@given(
    st.sampled_from(FORMATS),
    st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=16),
)
def test_garbled_files(tmp_path: Path, fmt: str, edits: list[tuple[int, int]]) -> None:
    data = bytearray(REAL[fmt])
    for position, value in edits:
        data[position % len(data)] = value
    read_all(tmp_path, bytes(data), fmt)
