"""Property tests: whatever a retailer's cell holds, a cleaning rule answers with a value or a
named rejection, never an unhandled exception; readers never lose or crash on a row."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartmkt.data import values as v
from smartmkt.data.formats import describe
from smartmkt.data.readers import read_rows

CELLS = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"[-(]?[$€£]?\s?\d{1,7}([.,]\d{1,3}){0,3}\s?(EUR|USD)?\)?", fullmatch=True),
    st.from_regex(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}( \d{1,2}:\d{2}( ?[+-]\d{2}:?\d{2})?)?", fullmatch=True),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)


@settings(max_examples=400, deadline=None)
@given(CELLS)
def test_cell_rules_never_raise_anything_but_a_rejection(cell: object) -> None:
    for rule in (
        v.clean_money,
        v.clean_timestamp,
        v.clean_quantity,
        v.clean_bool,
        v.clean_category,
        v.clean_text,
    ):
        try:
            result = rule(cell)
        except v.Rejected as exc:
            assert exc.rule.startswith("invalid.")
        else:
            assert isinstance(result, v.Clean)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30), min_size=1, max_size=20
    )
)
def test_delimited_reader_keeps_every_line(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "fuzz.csv"
    body = [line.replace("\n", " ").replace("\r", " ").replace('"', "") for line in lines]
    path.write_text("a,b\n" + "\n".join(body) + "\n", encoding="utf-8")
    rows = list(read_rows(describe(path, "delimited")))
    assert len(rows) == sum(1 for line in body if line.strip(" \t\f\v"))
    for row in rows:
        assert row.values is not None or row.error == "format.column_count"


FIELD_TEXT = st.text(alphabet=st.sampled_from(list('ab ,;"\n\t')), max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(FIELD_TEXT, min_size=1, max_size=5), min_size=1, max_size=8),
    st.lists(st.text(alphabet=st.sampled_from(list('ab ,;"')), max_size=12), max_size=8),
    st.sampled_from([",", ";", "\t"]),
)
def test_quoted_records_split_as_the_csv_module_splits_them(
    records: list[list[str]], garbage: list[str], delimiter: str
) -> None:
    """The reader splits records with quotes by one regex over the column
    (readers.quoted_fields); a record it says it read whole has exactly the fields the csv
    module gives, and the rest go to the csv module: records written by csv.writer (quotes,
    delimiters and newlines inside fields) and arbitrary text with stray quotes."""
    import csv
    import io

    import polars as pl

    from smartmkt.data.readers import quoted_fields

    texts = []
    for fields in records:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(fields)
        texts.append(out.getvalue().removesuffix("\n"))
    texts += [g for g in garbage if '"' in g]  # the reader sends only records with a quote here
    parsed, whole = quoted_fields(pl.Series(texts, dtype=pl.String), delimiter)
    for text, fields, read_whole in zip(texts, parsed.to_list(), whole.to_list(), strict=True):
        expected = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        if read_whole:
            assert fields == expected, text
    written = len(records)
    assert all(whole.to_list()[:written]), "every record csv.writer wrote is read by the regex"
