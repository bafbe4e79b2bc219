"""Readers on truly messy files, written here by hand: every record comes out, with its line
number and raw text, parsed or flagged."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from smartmkt.data.formats import describe
from smartmkt.data.readers import ReaderError, read_rows


def rows(path: Path, columns: list[str] | None = None) -> list:  # type: ignore[type-arg]
    return list(read_rows(describe(path), columns))


def test_semicolon_csv_with_bom_decimal_commas_and_a_quoted_newline(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(
        codecs.BOM_UTF8
        + (
            b"order;customer;total;note\r\n"
            b"A1;42;1.234,50;plain\r\n"
            b'A2;43;12,5;"two\r\nlines"\r\n'
            b"A3;44;7\r\n"  # wrong column count
            b"A4;45;9,99;ok\r\n"
            b"A5;46;3,0"  # truncated last line, no newline
        )
    )
    info = describe(path)
    assert (info.format, info.encoding, info.delimiter) == ("delimited", "utf-8-sig", ";")
    assert info.columns == ("order", "customer", "total", "note")
    got = rows(path)
    assert [r.line for r in got] == [2, 3, 5, 6, 7]
    assert got[0].values == {"order": "A1", "customer": "42", "total": "1.234,50", "note": "plain"}
    assert got[1].values is not None and got[1].values["note"] == "two\nlines"
    assert [r.error for r in got] == [None, None, "format.column_count", None, "format.column_count"]
    assert got[2].raw == "A3;44;7"


def test_latin1_tsv_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "products.tsv"
    path.write_bytes("sku\ttitle\tprice\nP1\tCafé Olé\t3,50\nP2\tNaïve\t4\n".encode("cp1252"))
    info = describe(path)
    assert (info.encoding, info.delimiter) == ("cp1252", "\t")
    assert [r.values["title"] for r in rows(path)] == ["Café Olé", "Naïve"]  # type: ignore[index]


def test_a_stray_latin1_line_in_a_utf8_file_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    big = "id,name\n" + "".join(f"{i},Zoë\n" for i in range(20_000))
    path.write_bytes(big.encode() + "99999,Müller\n".encode("cp1252"))
    got = rows(path)
    assert len(got) == 20_001
    assert got[0].values == {"id": "0", "name": "Zoë"}
    assert got[-1].values == {"id": "99999", "name": "Müller"}
    assert got[-1].repairs == ("text.cp1252_line",)


def test_whitespace_separated_cdnow_style(tmp_path: Path) -> None:
    path = tmp_path / "CDNOW_master.txt"
    good = b"".join(b" %05d 19970112  1   12.00\r\n" % i for i in range(2, 10))
    path.write_bytes(b" 00001 19970101  1   11.77\r\n" + good + b" 00002 19970112  5\r\n")
    info = describe(path)
    assert info.format == "whitespace"
    got = rows(path, ["customer_id", "date", "quantity", "amount"])
    assert got[0].values == {"customer_id": "00001", "date": "19970101", "quantity": "1", "amount": "11.77"}
    assert len(got) == 10
    assert [r.error for r in got] == [None] * 9 + ["format.column_count"]


def test_json_lines_with_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text('{"id": 1, "total": "$5"}\n\n{"id": 2, "tot\n[1, 2]\n{"id": 3}\n')
    got = rows(path)
    assert [(r.line, r.error) for r in got] == [(1, None), (3, "format.json"), (4, "format.json"), (5, None)]
    assert got[0].values == {"id": 1, "total": "$5"}


def test_json_array_parquet_and_excel(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from openpyxl import Workbook

    records = [{"sku": "P1", "price": 3.5}, {"sku": "P2", "price": None}]
    (tmp_path / "p.json").write_text(json.dumps(records))
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "p.parquet")
    book = Workbook()
    sheet = book.active
    sheet.append(["sku", "price"])
    sheet.append(["P1", 3.5])
    sheet.append([None, None])  # blank row
    sheet.append(["P2", None])
    book.save(tmp_path / "p.xlsx")
    for name, lines in (("p.json", [1, 2]), ("p.parquet", [2, 3]), ("p.xlsx", [2, 4])):
        got = rows(tmp_path / name)
        assert [r.values for r in got] == records, name
        assert [r.line for r in got] == lines, name


def test_whole_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ReaderError, match="no such file"):
        describe(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("  \n")
    with pytest.raises(ReaderError, match="empty"):
        describe(tmp_path / "empty.csv")
    (tmp_path / "x.docx").write_text("hi")
    with pytest.raises(ReaderError, match="unknown file type"):
        describe(tmp_path / "x.docx")
    (tmp_path / "bad.json").write_text("[{")
    with pytest.raises(ReaderError, match="not valid JSON"):
        rows(tmp_path / "bad.json")
