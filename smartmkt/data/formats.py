"""What a retailer's file is, before a row is read: its format (by its name, else by a sample
of its text), encoding, delimiter and header columns; ``describe`` says it all as the
``SourceInfo`` the readers (smartmkt.data.readers) take.

Formats: delimited text (any delimiter, BOM or not, UTF-8 or cp1252/Latin-1 detected),
whitespace-separated text such as CDNOW_master.txt, JSON Lines, JSON arrays, Parquet and Excel
(.xlsx).
"""

from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path

from smartmkt.data.readers import ReaderError, SourceInfo, record_columns

SAMPLE_BYTES = 256 * 1024
DELIMITERS = ",;\t|"
FORMATS = ("delimited", "whitespace", "jsonl", "json", "parquet", "xlsx")


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
    return SourceInfo(path, fmt, columns=record_columns(SourceInfo(path, fmt)))


def normalize_column(name: str) -> str:
    """ "Customer ID", "customer_id", "CustomerId" -> "customerid" (for matching, not display)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())
