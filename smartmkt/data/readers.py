"""Read what retailers send, row by row, without losing one: every physical record comes out as
a ``SourceRow`` with its line number and raw text, parsed or not; ``read_chunks`` gives them as
columnar chunks. What a file is (format, encoding, delimiter, header) is found out first by
smartmkt.data.formats.describe, which gives the ``SourceInfo`` read here.

Large files stream: delimited, whitespace, JSON Lines, Parquet and Excel are read
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl


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
    """How to read a file (smartmkt.data.formats.describe finds it out)."""

    path: Path
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    columns: tuple[str, ...] = ()


def record_columns(info: SourceInfo, sample: int = 200) -> tuple[str, ...]:
    """Column names of a record-oriented file: the keys of its first records, in order."""
    if info.format == "parquet":
        import pyarrow.parquet as pq

        with _damaged(info.path, "Parquet"):
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


def _delimited(info: SourceInfo, columns: Sequence[str] | None) -> Iterator[SourceRow]:
    for chunk in read_text_chunks(info, columns):
        yield from chunk_rows(chunk)


_whitespace = _delimited


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


@contextmanager
def _damaged(path: Path, kind: str) -> Iterator[None]:
    """A damaged binary file makes its parsing library raise whatever it meets (BadZipFile,
    KeyError, ArrowInvalid, thrift's OSError...; found by tests/test_fuzz_import.py): here that
    is one ReaderError naming the file, as for every other unreadable file."""
    try:
        yield
    except ReaderError:
        raise
    except Exception as exc:
        raise ReaderError(f"{path.name}: not a readable {kind} file ({type(exc).__name__}: {exc})") from exc


def _parquet(info: SourceInfo, _columns: Sequence[str] | None) -> Iterator[SourceRow]:
    import pyarrow.parquet as pq

    number = 1
    with _damaged(info.path, "Parquet"):
        for batch in pq.ParquetFile(info.path).iter_batches(batch_size=50_000):
            for value in batch.to_pylist():
                number += 1
                yield SourceRow(number, value, json.dumps(value, ensure_ascii=False, default=str))


def _xlsx(info: SourceInfo, _columns: Sequence[str] | None) -> Iterator[SourceRow]:
    with _damaged(info.path, "Excel"):
        yield from _xlsx_rows(info)


def _xlsx_rows(info: SourceInfo) -> Iterator[SourceRow]:
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


# --- columnar chunks -------------------------------------------------------------------------
# The importer reads every file as polars DataFrames of String columns plus four bookkeeping
# columns, so the cleaning rules run vectorised over a chunk instead of row by row in Python.
LINE, RAW, ERROR, REPAIRS = "__line", "__raw", "__error", "__repairs"
BOOKKEEPING = (LINE, RAW, ERROR, REPAIRS)
CHUNK_ROWS = 100_000
BLOCK_BYTES = 8 << 20
MAX_OPEN_QUOTE_LINES = 100_000
BLANK = r"^[ \t\f\v]*$"  # a blank line is skipped; one with any other character is a record


def read_chunks(
    info: SourceInfo, columns: Sequence[str] | None = None, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """The file's records as DataFrames of about ``chunk_rows`` rows; memory stays flat.

    Text files are split and parsed by polars in blocks; the record formats (JSON, Parquet,
    Excel) come through ``read_rows`` with their values as text, the form every rule reads.
    """
    if info.format in ("delimited", "whitespace"):
        yield from read_text_chunks(info, columns, chunk_rows)
        return
    batch: list[SourceRow] = []
    for row in read_rows(info, columns):
        batch.append(row)
        if len(batch) >= chunk_rows:
            yield rows_frame(batch)
            batch = []
    if batch:
        yield rows_frame(batch)


def rows_frame(rows: Sequence[SourceRow]) -> pl.DataFrame:
    """SourceRows as one chunk; values become text (None stays missing)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(str(k) for k in row.values or ()))
    data: dict[str, list[Any]] = {
        LINE: [r.line for r in rows],
        RAW: [r.raw for r in rows],
        ERROR: [r.error for r in rows],
        REPAIRS: [" ".join(r.repairs) for r in rows],
    }
    for name in names:
        data[name] = [_as_text((r.values or {}).get(name)) for r in rows]
    schema = {LINE: pl.Int64, **{k: pl.String for k in data if k != LINE}}
    return pl.DataFrame(data, schema=schema)


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def chunk_rows(chunk: pl.DataFrame) -> Iterator[SourceRow]:
    """A chunk back as SourceRows (for callers that want one record at a time)."""
    names = [c for c in chunk.columns if c not in BOOKKEEPING]
    for record in chunk.iter_rows(named=True):
        error = record[ERROR]
        values = None if error else {n: record[n] for n in names}
        repairs = tuple(record[REPAIRS].split()) if record[REPAIRS] else ()
        yield SourceRow(record[LINE], values, record[RAW], error, repairs)


def read_text_chunks(
    info: SourceInfo, columns: Sequence[str] | None = None, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """Delimited or whitespace text, block by block. A record never straddles two chunks: a
    block that ends inside a quoted field carries its open record over to the next one."""
    header: list[str] | None = list(columns) if columns else None
    carry = pl.DataFrame(schema={"text": pl.String, LINE: pl.Int64, "cp1252": pl.Boolean})
    rest = pl.DataFrame()  # records parsed but not yet given out (a chunk is ``chunk_rows``)
    chunk_rows = max(1, chunk_rows)
    for lines, final in _line_blocks(info, chunk_rows):
        lines = pl.concat([carry, lines])
        if info.format == "delimited":
            lines, carry = _split_open_quote(lines, final)
        records = _records(lines, quoted=info.format == "delimited")
        if header is None and records.height:
            header = [h.strip() for h in _split_fields(records["text"][:1], info)[0] or ()]
            records = records.slice(1)
        if records.height and header is not None:
            parsed = _parse_records(records, header, info)
            rest = pl.concat([rest, parsed]) if rest.height else parsed
            while rest.height >= chunk_rows:  # whole chunks; the rest waits for the next block
                yield rest.slice(0, chunk_rows)
                rest = rest.slice(chunk_rows)
    if rest.height:
        yield rest


def _line_blocks(info: SourceInfo, chunk_rows: int) -> Iterator[tuple[pl.DataFrame, bool]]:
    """(lines, is last block): text, 1-based line number and the cp1252 fallback flag."""
    number = 1
    for lines, fallback, final in _decoded_blocks(info, max(1, chunk_rows) * 64):
        frame = pl.DataFrame(
            {
                "text": lines.str.strip_chars_end("\r"),
                LINE: pl.int_range(number, number + len(lines), eager=True, dtype=pl.Int64),
                "cp1252": fallback,
            }
        )
        number += len(lines)
        yield frame, final


def _split_lines(text: str) -> pl.Series:
    """A decoded block's lines, split by polars (no Python string per line); a final newline
    ends the last line, it does not start an empty one."""
    lines = pl.Series("text", [text.removesuffix("\n")], dtype=pl.String).str.split("\n").explode()
    return lines if text else lines.clear()


def _decoded_blocks(info: SourceInfo, block_bytes: int) -> Iterator[tuple[pl.Series, pl.Series, bool]]:
    """Blocks of whole lines, decoded, with the cp1252 fallback flag of each line (a UTF-8 line
    that does not decode is read as cp1252)."""
    encoding = info.encoding or "utf-8"
    block_bytes = min(block_bytes, BLOCK_BYTES)
    with info.path.open("rb") as handle:
        if encoding.startswith("utf-16"):
            decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            pending = ""
            while True:
                data = handle.read(block_bytes)
                text = pending + decoder.decode(data, final=not data)
                cut = len(text) if not data else text.rfind("\n") + 1
                pending, text = text[cut:], text[:cut]
                lines = _split_lines(text)
                if len(lines) or not data:
                    yield lines, pl.repeat(False, len(lines), eager=True), not data
                if not data:
                    return
        codec = "utf-8" if encoding == "utf-8-sig" else encoding
        carry = b""
        first = True
        while True:
            data = handle.read(block_bytes)
            buffer = carry + data
            cut = len(buffer) if not data else buffer.rfind(b"\n") + 1
            block, carry = buffer[:cut], buffer[cut:]
            if first and block:
                block, first = block.removeprefix(codecs.BOM_UTF8), False
            if block or not data:
                yield (*_decode_lines(block, codec), not data)
            if not data:
                return


def _decode_lines(block: bytes, codec: str) -> tuple[pl.Series, pl.Series]:
    """The block decoded whole; when a line in it does not decode, the block is decoded with
    replacement characters and only the lines that hold one are decoded again, each alone."""
    try:
        lines = _split_lines(block.decode(codec))
        return lines, pl.repeat(False, len(lines), eager=True)
    except UnicodeDecodeError:
        lines = _split_lines(block.decode(codec, errors="replace"))
    fallback = pl.repeat(False, len(lines), eager=True)
    suspects = lines.str.contains("\ufffd", literal=True).arg_true()
    raw_lines = block.split(b"\n")
    decoded = [_decode_line(raw_lines[i], codec) for i in suspects]
    lines = lines.scatter(suspects, pl.Series([text for text, _ in decoded], dtype=pl.String))
    fallback = fallback.scatter(suspects, pl.Series([bad for _, bad in decoded], dtype=pl.Boolean))
    return lines, fallback


def _decode_line(raw: bytes, codec: str) -> tuple[str, bool]:
    try:
        return raw.decode(codec), False
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace"), True


def _split_open_quote(lines: pl.DataFrame, final: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(lines that end with every quote closed, the open record's lines to carry over)."""
    parity = lines["text"].str.count_matches('"', literal=True).cum_sum() % 2
    if lines.height == 0 or parity[-1] == 0 or final:
        return lines, lines.clear()
    closed = parity.eq(0).arg_true()
    cut = int(closed[-1]) + 1 if len(closed) else 0
    if cut == 0 and lines.height > MAX_OPEN_QUOTE_LINES:
        # the first line opens a quote nothing closes: it alone becomes a broken record
        return lines.slice(0, 1).with_columns(pl.lit(True).alias("open")), lines.slice(1)
    return lines.slice(0, cut), lines.slice(cut)


def _records(lines: pl.DataFrame, quoted: bool) -> pl.DataFrame:
    """Lines grouped into records (a quoted field may hold newlines); blank ones dropped."""
    if quoted and "open" not in lines.columns:
        parity = lines["text"].str.count_matches('"', literal=True).cum_sum() % 2
        if parity.sum():  # some record spans lines
            starts = (parity.shift(1, fill_value=0) == 0).cum_sum()
            lines = (
                lines.with_columns(starts.alias("record"))
                .group_by("record", maintain_order=True)
                .agg(
                    pl.col("text").str.join("\n"),
                    pl.col(LINE).first(),
                    pl.col("cp1252").any(),
                    (pl.col("text").str.count_matches('"', literal=True).sum() % 2 == 1).alias("open"),
                )
                .drop("record")
            )
    if "open" not in lines.columns:
        lines = lines.with_columns(pl.lit(False).alias("open"))
    return lines.filter(~pl.col("text").str.contains(BLANK))


def _split_fields(texts: pl.Series, info: SourceInfo) -> list[list[str] | None]:
    if info.format == "whitespace":
        return [t.split() for t in texts]
    return [_csv_fields(t, info.delimiter or ",") for t in texts]


def _csv_records(texts: list[str], delimiter: str) -> list[list[str] | None]:
    """Each text is one whole record (quotes balanced): one csv reader over all of them, or
    record by record when one of them is malformed."""
    if all(t.count('"') % 2 == 0 for t in texts):
        try:
            rows: list[list[str] | None] = list(csv.reader(texts, delimiter=delimiter))
        except csv.Error:
            pass
        else:
            if len(rows) == len(texts):
                return rows
    return [_csv_fields(t, delimiter) for t in texts]


def _csv_fields(text: str, delimiter: str) -> list[str] | None:
    try:
        return next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        return None


def quoted_fields(texts: pl.Series, delimiter: str) -> tuple[pl.Series, pl.Series]:
    """Records with quotes split into fields as the csv module does (a field in double quotes
    may hold the delimiter, newlines and doubled quotes), by one regex over the whole column:
    (each record's fields, whether the regex read the record whole). A record it does not read
    whole (a quote inside an unquoted field, text after a closing quote) is left to the csv
    module; tests compare the two on generated records."""
    d = re.escape(delimiter)
    texts = delimiter + texts  # every field, the first too, follows a delimiter
    matches = texts.str.extract_all(f'{d}(?:"(?:[^"]|"")*"|[^{d}"]*)')
    frame = pl.DataFrame({"text": texts, "match": matches}).with_row_index("record")
    whole = frame.select(pl.col("match").list.join("") == pl.col("text")).to_series().fill_null(False)
    cells = (
        frame.select("record", "match")
        .explode("match")
        .with_columns(pl.col("match").str.strip_prefix(delimiter).alias("cell"))
    )
    quoted = pl.col("cell").str.starts_with('"')
    value = (
        pl.when(quoted)
        .then(
            pl.col("cell")
            .str.slice(1, pl.col("cell").str.len_chars() - 2)
            .str.replace_all('""', '"', literal=True)
        )
        .otherwise(pl.col("cell"))
    )
    fields = (
        cells.with_columns(value.alias("cell"))
        .group_by("record", maintain_order=True)
        .agg(pl.col("cell"))
        .sort("record")["cell"]
    )
    return fields, whole


def _parse_records(records: pl.DataFrame, header: list[str], info: SourceInfo) -> pl.DataFrame:
    """Records -> the chunk: one String column per header name, or the row's error."""
    texts = records["text"]
    width = len(header)
    if info.format == "whitespace":
        fields = texts.str.extract_all(r"\S+")
    else:
        fields = texts.str.split(info.delimiter or ",")
    counts = fields.list.len().cast(pl.Int64)
    columns = [fields.list.get(i, null_on_oob=True).cast(pl.String) for i in range(width)]
    quoted = texts.str.contains('"', literal=True) if info.format == "delimited" else None
    if quoted is not None and quoted.any():  # quoted records follow the csv module's rules
        delimiter = info.delimiter or ","
        fields, whole = quoted_fields(texts.filter(quoted), delimiter)
        at = quoted.arg_true()
        counts = counts.scatter(at.filter(whole), fields.filter(whole).list.len().cast(pl.Int64))
        for i in range(width):
            columns[i] = columns[i].scatter(
                at.filter(whole), fields.filter(whole).list.get(i, null_on_oob=True)
            )
        if not whole.all():  # what the expression does not read whole: the csv module itself
            rest = at.filter(~whole)
            parsed = _csv_records(texts.filter(quoted).filter(~whole).to_list(), delimiter)
            counts = counts.scatter(rest, [-1 if r is None else len(r) for r in parsed])
            for i in range(width):
                values = [r[i] if r is not None and len(r) == width else None for r in parsed]
                columns[i] = columns[i].scatter(rest, pl.Series(values, dtype=pl.String))
    ok = (counts == width) & ~records["open"]
    body = {
        name: pl.when(ok).then(column).otherwise(None) for name, column in zip(header, columns, strict=True)
    }
    return records.select(
        pl.col(LINE),
        pl.col("text").alias(RAW),
        pl.when(ok).then(None).otherwise(pl.lit("format.column_count")).cast(pl.String).alias(ERROR),
        pl.when(ok & pl.col("cp1252")).then(pl.lit("text.cp1252_line")).otherwise(pl.lit("")).alias(REPAIRS),
        **{name: expr.cast(pl.String) for name, expr in body.items()},
    )
