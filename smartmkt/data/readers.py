"""Read what retailers send, row by row, without losing one: every physical record comes out as
a ``SourceRow`` with its line number and raw text, parsed or not.

Formats: delimited text (any delimiter, BOM or not, UTF-8 or cp1252/Latin-1 detected),
whitespace-separated text such as CDNOW_master.txt, JSON Lines, JSON arrays, Parquet and Excel
(.xlsx). Large files stream: delimited, whitespace, JSON Lines, Parquet and Excel are read
incrementally; a JSON array is parsed whole (use JSON Lines for files larger than memory).

Reader-level rejections (the row still comes out, with ``error`` set):
  format.column_count   a delimited/whitespace row with more or fewer fields than the header
  format.json           a JSON Lines line that is not a JSON object
Reader-level repair:
  text.cp1252_line      a line that is not valid UTF-8 in a UTF-8 file, read as cp1252
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_BYTES = 256 * 1024
DELIMITERS = ",;\t|"
FORMATS = ("delimited", "whitespace", "jsonl", "json", "parquet", "xlsx")


class ReaderError(ValueError):
    """The file as a whole cannot be read (missing, empty, unknown format)."""


@dataclass(frozen=True)
class SourceRow:
    line: int  # 1-based line in the file (for Parquet/Excel: the row number, header = 1)
    values: dict[str, Any] | None
    raw: str
    error: str | None = None
    repairs: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceInfo:
    path: Path
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    columns: tuple[str, ...] = ()


def _head(path: Path, size: int) -> bytes:
    with path.open("rb") as handle:
        return handle.read(size)


def _format_by_suffix(path: Path) -> str | None:
    """The format a file's name says; None for plain text, whose layout the sample decides."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        head = _head(path, 64).lstrip(codecs.BOM_UTF8).lstrip()
        return "json" if head.startswith(b"[") else "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".csv", ".tsv", ".txt", ".dat", ".psv", ""):
        return None
    raise ReaderError(
        f"{path.name}: unknown file type {suffix!r} (csv, tsv, txt, jsonl, json, parquet, xlsx)"
    )


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig for a UTF-8 BOM, utf-16 for its BOMs, utf-8 if it decodes, else cp1252."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    text = sample[:-4].decode("utf-8", errors="surrogateescape")  # may end mid-character
    invalid = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    valid_non_ascii = sum(1 for ch in text if ord(ch) > 127) - invalid
    # A UTF-8 file with a few stray Latin-1 lines stays UTF-8 (those lines fall back per line).
    return "utf-8" if invalid == 0 or valid_non_ascii > invalid else "cp1252"


def _sample_text(path: Path) -> tuple[str, str]:
    raw = _head(path, SAMPLE_BYTES)
    if not raw.strip():
        raise ReaderError(f"{path.name}: the file is empty")
    encoding = detect_encoding(raw)
    return raw.decode(encoding, errors="replace"), encoding


def _text_layout(text: str) -> str:
    """ "whitespace" when the sample's lines split on blanks into a steady number of fields."""
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    if not lines or any(d in lines[0] for d in DELIMITERS):
        return "delimited"
    widths = [len(ln.split()) for ln in lines]
    most = max(set(widths), key=widths.count)
    if most > 1 and widths.count(most) >= 0.8 * len(widths):
        return "whitespace"
    return "delimited"


def sniff_delimiter(text: str) -> str:
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = text.splitlines()[0] if text else ""
        return max(DELIMITERS, key=first.count)


def describe(path: Path, fmt: str | None = None) -> SourceInfo:
    """What the file is: format, encoding, delimiter, header columns."""
    if not path.exists():
        raise ReaderError(f"{path}: no such file")
    fmt = fmt or _format_by_suffix(path)
    if fmt is not None and fmt not in FORMATS:
        raise ReaderError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt in (None, "delimited", "whitespace"):
        text, encoding = _sample_text(path)  # one sample decides layout, encoding and header
        fmt = fmt or _text_layout(text)
        delimiter = sniff_delimiter(text) if fmt == "delimited" else None
        first = text.splitlines()[0] if text else ""
        header = next(csv.reader([first], delimiter=delimiter)) if delimiter else first.split()
        return SourceInfo(path, fmt, encoding, delimiter, tuple(h.strip() for h in header))
    return SourceInfo(path, fmt, columns=_record_columns(SourceInfo(path, fmt)))


def _record_columns(info: SourceInfo, sample: int = 200) -> tuple[str, ...]:
    """Column names of a record-oriented file: the keys of its first records, in order."""
    if info.format == "parquet":
        import pyarrow.parquet as pq

        return tuple(pq.ParquetFile(info.path).schema_arrow.names)
    names: dict[str, None] = {}
    for number, row in enumerate(read_rows(info)):
        if row.values:
            names.update(dict.fromkeys(str(k) for k in row.values))
        if number >= sample:
            break
    return tuple(names)


def read_rows(info: SourceInfo, columns: Sequence[str] | None = None) -> Iterator[SourceRow]:
    """Every record of the file. ``columns`` names the fields of a headerless text file."""
    readers = {
        "delimited": _delimited,
        "whitespace": _whitespace,
        "jsonl": _jsonl,
        "json": _json_array,
        "parquet": _parquet,
        "xlsx": _xlsx,
    }
    yield from readers[info.format](info, columns)


def _text_lines(info: SourceInfo) -> Iterator[tuple[int, str, bool]]:
    """(line number, line without its newline, read with the cp1252 fallback) for a text file."""
    encoding = info.encoding or "utf-8"
    if encoding.startswith("utf-16"):
        with info.path.open(encoding=encoding, errors="replace", newline="") as text:
            for number, line in enumerate(text, start=1):
                yield number, line.rstrip("\r\n"), False
        return
    with info.path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and encoding == "utf-8-sig":
                raw = raw.removeprefix(codecs.BOM_UTF8)
            try:
                line, fallback = raw.decode("utf-8" if encoding == "utf-8-sig" else encoding), False
            except UnicodeDecodeError:
                line, fallback = raw.decode("cp1252", errors="replace"), True
            yield number, line.rstrip("\r\n"), fallback


def _delimited(info: SourceInfo, columns: Sequence[str] | None) -> Iterator[SourceRow]:
    header: list[str] | None = list(columns) if columns else None
    pending: list[str] = []
    start = 0
    for number, line, bad in _text_lines(info):
        if not pending:
            start = number
        pending.append(line)
        text = "\n".join(pending)
        if text.count('"') % 2:  # a quoted field continues on the next line
            continue
        pending = []
        if not text.strip():
            continue
        fields = next(csv.reader(io.StringIO(text), delimiter=info.delimiter or ","))
        if header is None:
            header = [f.strip() for f in fields]
            continue
        yield _record(start, text, header, fields, bad)
    if pending and header is not None:  # an unterminated quote at the end of the file
        text = "\n".join(pending)
        yield SourceRow(start, None, text, "format.column_count")


def _whitespace(info: SourceInfo, columns: Sequence[str] | None) -> Iterator[SourceRow]:
    header: list[str] | None = list(columns) if columns else None
    for number, line, bad in _text_lines(info):
        if not line.strip():
            continue
        fields = line.split()
        if header is None:
            header = fields
            continue
        yield _record(number, line, header, fields, bad)


def _record(line: int, raw: str, header: list[str], fields: list[str], bad: bool) -> SourceRow:
    if len(fields) != len(header):
        return SourceRow(line, None, raw, "format.column_count")
    repairs = ("text.cp1252_line",) if bad else ()
    return SourceRow(line, dict(zip(header, fields, strict=True)), raw, None, repairs)


def _jsonl(info: SourceInfo, _columns: Sequence[str] | None) -> Iterator[SourceRow]:
    with info.path.open("rb") as handle:
        for number, raw_bytes in enumerate(handle, start=1):
            raw = raw_bytes.decode("utf-8-sig" if number == 1 else "utf-8", errors="replace").strip()
            if not raw:
                continue
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = None
            if isinstance(value, dict):
                yield SourceRow(number, value, raw)
            else:
                yield SourceRow(number, None, raw, "format.json")


def _json_array(info: SourceInfo, _columns: Sequence[str] | None) -> Iterator[SourceRow]:
    text = info.path.read_bytes().decode("utf-8-sig", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReaderError(f"{info.path.name}: not valid JSON ({exc})") from exc
    if not isinstance(data, list):
        raise ReaderError(f"{info.path.name}: expected a JSON array of objects")
    for index, value in enumerate(data, start=1):
        raw = json.dumps(value, ensure_ascii=False, default=str)
        if isinstance(value, dict):
            yield SourceRow(index, value, raw)
        else:
            yield SourceRow(index, None, raw, "format.json")


def _parquet(info: SourceInfo, _columns: Sequence[str] | None) -> Iterator[SourceRow]:
    import pyarrow.parquet as pq

    number = 1
    for batch in pq.ParquetFile(info.path).iter_batches(batch_size=50_000):
        for value in batch.to_pylist():
            number += 1
            yield SourceRow(number, value, json.dumps(value, ensure_ascii=False, default=str))


def _xlsx(info: SourceInfo, _columns: Sequence[str] | None) -> Iterator[SourceRow]:
    from openpyxl import load_workbook

    book = load_workbook(info.path, read_only=True, data_only=True)
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = [
            str(h).strip() if h is not None else f"column_{i + 1}" for i, h in enumerate(next(rows, ()))
        ]
        for number, cells in enumerate(rows, start=2):
            if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                continue
            value = dict(zip(header, cells, strict=False))
            yield SourceRow(number, value, json.dumps(value, ensure_ascii=False, default=str))
    finally:
        book.close()


def normalize_column(name: str) -> str:
    """ "Customer ID", "customer_id", "CustomerId" -> "customerid" (for matching, not display)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())
