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
