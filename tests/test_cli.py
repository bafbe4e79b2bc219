"""The smartmkt command line, run as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartmkt.nlu.evaluate import CLASSIFICATION_KEYS, METRIC_KEYS

ROOT = Path(__file__).resolve().parent.parent
SMARTMKT = Path(sys.executable).parent / "smartmkt"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SMARTMKT), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture
def demo_env(demo_db: Path) -> dict[str, str]:
    return {"SMARTMKT_DATABASE_URL": f"sqlite:///{demo_db}"}


def test_recommend_json(demo_env: dict[str, str], demo_engine) -> None:  # type: ignore[no-untyped-def]
    from smartmkt.store.repository import StoreRepository

    result = cli(
        "recommend",
        "--customer",
        "42",
        "--text",
        "funny and short",
        "-k",
        "5",
        "--category",
        "comedy",
        "--price-max",
        "10",
        "--json",
        env=demo_env,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["personalized"] is True
    assert len(body["items"]) == 5
    bought = set(StoreRepository(demo_engine).history("42").product_ids)
    for item in body["items"]:
        assert "Comedy" in item["genres"] and item["price"] <= 10
        assert item["product_id"] not in bought


def test_recommend_for_a_new_customer(demo_env: dict[str, str]) -> None:
    result = cli("recommend", "--customer", "nobody-yet", "--text", "space adventure", "--json", env=demo_env)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["personalized"] is False and len(body["items"]) == 5


def test_eval_nlu_json_on_any_rasa_file(tmp_path: Path) -> None:
    test_file = tmp_path / "mini.yml"
    test_file.write_text(
        'version: "3.1"\nnlu:\n- intent: ask_price\n  examples: |\n'
        "    - how much is [Toy Story](product)?\n- intent: greet\n  examples: |\n    - hello there\n"
    )
    result = cli("eval", "nlu", "--test-file", str(test_file), "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)["model"]
    assert set(figures) == {*METRIC_KEYS, *CLASSIFICATION_KEYS}
    assert figures["n"] == 2


def test_clear_errors(tmp_path: Path) -> None:
    missing = cli("eval", "nlu", "--test-file", str(tmp_path / "nope.yml"), "--json")
    assert missing.returncode != 0 and "no such file" in missing.stderr
    bad = cli("eval", "nlu", "--test-file", str(tmp_path), "--baseline", "bert")
    assert bad.returncode != 0 and "unknown baseline" in bad.stderr
    k = cli("recommend", "--customer", "42", "-k", "0")
    assert k.returncode != 0 and "Traceback" not in k.stderr


def test_data_import_json_report_and_quarantine(tmp_path: Path) -> None:
    env = {"SMARTMKT_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    orders = tmp_path / "orders.csv"
    orders.write_text('Cust ID;Order Date;Qty;Total;SKU\nC1;05/03/2024;1;"1.234,50";X\nC2;bad;1;2;X\n')
    result = cli("data", "import", "--orders", str(orders), "--currency", "eur", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["files"][0]
    assert report["rows_read"] == 2 and report["quarantined_total"] == 2
    assert report["quarantined"] == {"invalid.date": 1, "reference.unknown_customer": 1}
    assert report["mapping"]["customer_id"] == "Cust ID"
    listed = json.loads(cli("data", "quarantine", "list", "--json", env=env).stdout)
    assert [(e["line_number"], e["rule"]) for e in listed] == [
        (3, "invalid.date"),
        (2, "reference.unknown_customer"),
    ]
    assert listed[0]["raw"] == "C2;bad;1;2;X"
    missing = cli("data", "import", "--orders", str(tmp_path / "nope.csv"), env=env)
    assert missing.returncode != 0 and "no such file" in missing.stderr


def test_data_import_asks_for_the_shops_currency_when_a_file_does_not_say(tmp_path: Path) -> None:
    """No currency in the file, none given: a clear refusal before anything is written (run in a
    pipe, so there is no one to ask); --currency or SMARTMKT_CURRENCY answers it; a currency the
    file gives wins over the shop's."""
    from sqlalchemy import create_engine, select

    from smartmkt.store.models import ImportRun, Product

    store = tmp_path / "store.db"
    env = {"SMARTMKT_DATABASE_URL": f"sqlite:///{store}"}
    products = tmp_path / "products.csv"
    products.write_text("sku,title,price\nP1,Tea towel,3.50\nP2,Mug,6.00\n")
    refused = cli("data", "import", "--products", str(products), env=env)
    assert refused.returncode != 0
    assert "does not say which currency" in refused.stderr and "--currency" in refused.stderr
    engine = create_engine(f"sqlite:///{store}")
    with engine.connect() as conn:
        assert conn.scalar(select(ImportRun.id)) is None  # nothing written, not even the run
    bad = cli("data", "import", "--products", str(products), "--currency", "pounds", env=env)
    assert bad.returncode != 0 and "three-letter ISO 4217 code" in bad.stderr
    done = cli(
        "data", "import", "--products", str(products), "--json", env={**env, "SMARTMKT_CURRENCY": "gbp"}
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"][0]["imputed"] == {"imputed.currency": 2}
    euro = tmp_path / "euro.csv"
    euro.write_text("sku,title,price,currency\nP3,Apron,12.00,EUR\n")
    assert (
        cli("data", "import", "--products", str(euro), env={**env, "SMARTMKT_CURRENCY": "GBP"}).returncode
        == 0
    )
    with engine.connect() as conn:
        found = dict(conn.execute(select(Product.external_ref, Product.currency)).all())
    assert found == {"P1": "GBP", "P2": "GBP", "P3": "EUR"}
    engine.dispose()


def test_the_uci_online_retail_export_imports_right_without_a_mapping(tmp_path: Path) -> None:
    """A hand-written sample in the layout of the UCI "Online Retail" export (tests/fixtures),
    imported as a shop owner would (`data import --orders FILE`, an orders-only export: its
    customers and products created from the lines, in pounds): every row accounted for, by a
    named rule where it was not stored as it was."""
    from sqlalchemy import create_engine, select

    from smartmkt.store.models import Customer, Order, Product

    store = tmp_path / "store.db"
    env = {"SMARTMKT_DATABASE_URL": f"sqlite:///{store}"}
    sample = ROOT / "tests" / "fixtures" / "online_retail_sample.csv"
    argv = ("data", "import", "--orders", str(sample), "--create-missing", "--currency", "GBP", "--json")
    result = cli(*argv, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["files"][0]
    mapped = report["mapping"]  # detected (tests/test_data_mapping.py checks the whole header)
    assert (mapped["product_id"], mapped["title"], mapped["country"]) == (
        "StockCode",
        "Description",
        "Country",
    )
    assert report["rows_read"] == 20
    assert report["duplicates"] == {"duplicates.exact": 1}  # 536370's alarm clock, listed twice
    assert report["quarantined"] == {"missing.customer_id": 4}  # no CustomerID (bad debt lines too)
    assert report["inserted"] == 15
    assert (
        report["rows_read"] == report["inserted"] + report["duplicates_dropped"] + report["quarantined_total"]
    )
    assert report["repaired"]["order.return"] == 2  # C536379, C536383: negative quantities
    assert report["repaired"]["reference.placeholder_product"] == 14
    engine = create_engine(f"sqlite:///{store}")
    with engine.connect() as conn:
        titles = dict(conn.execute(select(Product.external_ref, Product.title)).all())
        currencies = set(conn.execute(select(Product.currency)).scalars())
        countries = dict(conn.execute(select(Customer.external_ref, Customer.country)).all())
        returns = conn.execute(select(Order.quantity, Order.amount_cents).where(Order.quantity < 0)).all()
    engine.dispose()
    assert titles["85123A"] == "WHITE HANGING HEART T-LIGHT HOLDER" and titles["POST"] == "POSTAGE"
    assert not [t for t in titles.values() if t.startswith("Product ")]  # every line named its product
    assert currencies == {"GBP"}
    assert countries["12583"] == "France" and countries["12347"] == "Iceland" and len(countries) == 7
    assert sorted(returns) == [(-1, -2750), (-1, -465)]


def test_a_shopify_orders_export_imports_right_without_a_mapping(tmp_path: Path) -> None:
    """A hand-written sample in the layout of Shopify's orders export (tests/fixtures): a row
    per line item, the order's own fields (date, currency, country) on its first line only, the
    buyer known by e-mail. Each line gets its order's fields (order.filled_from_order) and its
    own amount (price x quantity, not the order's Total); a line with no SKU is quarantined."""
    from sqlalchemy import create_engine, select

    from smartmkt.store.models import Customer, Order, Product

    store = tmp_path / "store.db"
    env = {"SMARTMKT_DATABASE_URL": f"sqlite:///{store}"}
    sample = ROOT / "tests" / "fixtures" / "shopify_orders_sample.csv"
    result = cli("data", "import", "--orders", str(sample), "--create-missing", "--json", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["files"][0]
    assert report["rows_read"] == 5 and report["inserted"] == 4
    assert report["quarantined"] == {"missing.product_id": 1}  # the gift wrap has no SKU
    assert report["repaired"]["order.filled_from_order"] == 1  # #1001's second line (the third: no SKU)
    engine = create_engine(f"sqlite:///{store}")
    with engine.connect() as conn:
        lines = conn.execute(
            select(Customer.external_ref, Product.title, Order.quantity, Order.amount_cents, Order.ordered_at)
            .join(Customer, Customer.id == Order.customer_id)
            .join(Product, Product.id == Order.product_id)
            .order_by(Order.ordered_at, Order.amount_cents)
        ).all()
        currencies = set(conn.execute(select(Product.currency)).scalars())
        countries = dict(conn.execute(select(Customer.external_ref, Customer.country)).all())
    engine.dispose()
    assert [(c, t, q, a, f"{at:%Y-%m-%d %H:%M}") for c, t, q, a, at in lines] == [
        ("ana@example.com", "Bio-Collagen Mask", 1, 3490, "2026-10-07 07:50"),  # +0200 -> UTC
        ("ana@example.com", "Rose Face Oil", 2, 4500, "2026-10-07 07:50"),  # its order's date
        ("ben@example.com", "Rose Face Oil", 1, 2250, "2026-10-09 16:02"),
        ("ana@example.com", "Bio-Collagen Mask", 3, 10470, "2026-11-02 07:15"),
    ]
    assert currencies == {"EUR"} and countries == {"ana@example.com": "FR", "ben@example.com": "DE"}


def test_a_file_detection_cannot_map_gets_the_mapping_to_complete(tmp_path: Path) -> None:
    """Columns detection cannot place: the mapping it would use is printed as YAML on stdout
    (the error on stderr), so `... > mapping.yml`, filled in, imports the file."""
    odd = tmp_path / "odd.csv"
    odd.write_text("Buyer,Article Nr,When,Pieces\nb1,A1,2026-01-02,2\n")
    env = {"SMARTMKT_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}", "SMARTMKT_CURRENCY": "EUR"}
    result = cli("data", "import", "--orders", str(odd), "--create-missing", env=env)
    assert result.returncode == 1
    assert "no column found for required field(s)" in result.stderr
    filled = (
        result.stdout.replace("customer_id:  # which column?", "customer_id: Buyer")
        .replace("product_id:  # which column?", "product_id: Article Nr")
        .replace("ordered_at:  # which column?", "ordered_at: When")
    )
    (tmp_path / "mapping.yml").write_text(filled)
    argv = ("data", "import", "--orders", str(odd), "--mapping", str(tmp_path / "mapping.yml"))
    done = cli(*argv, "--create-missing", "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files"][0]["inserted"] == 1
    as_json = cli("data", "import", "--orders", str(odd), "--json", env=env)
    assert as_json.returncode == 1
    assert "ordered_at:  # which column?" in json.loads(as_json.stdout)["suggested_mapping"]


@pytest.mark.parametrize("depth", [0, 12], ids=["short-path", "long-path"])
def test_cli_errors_are_one_line_in_a_pipe(tmp_path: Path, depth: int) -> None:
    """An error written to a pipe is never split inside a phrase, whatever the path's length and
    whatever COLUMNS says (a clean CI environment has none; a narrow one wraps Rich at 80)."""
    folder = tmp_path.joinpath(*[f"folder-{i:02d}" for i in range(depth)])
    missing = folder / "orders-that-do-not-exist.csv"
    assert (len(str(missing)) > 120) == bool(depth)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    for columns in (None, "40"):
        run_env = {**env, "SMARTMKT_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"}
        if columns:
            run_env["COLUMNS"] = columns
        result = subprocess.run(
            [str(SMARTMKT), "data", "import", "--orders", str(missing)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=run_env,
            timeout=300,
        )
        assert result.returncode != 0
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines == [f"error: {missing}: no such file"], result.stderr


def test_cdnow_loads_through_the_pipeline(tmp_path: Path) -> None:
    """The real CDNOW file (from the lifetimes wheel) through the same importer as a shop's data."""
    url = f"sqlite:///{tmp_path / 'cdnow.db'}"
    result = cli("data", "load-cdnow", "--database-url", url, "--json")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["rows_read"] == 69_659
    assert body["inserted"] == 69_404 and body["duplicates"] == {"duplicates.exact": 255}
    assert body["quarantined_total"] == 0
    assert body["repaired"]["reference.placeholder_customer"] == 23_570
    again = json.loads(cli("data", "load-cdnow", "--database-url", url, "--json").stdout)
    assert (again["inserted"], again["unchanged"]) == (0, 69_404)


def test_bench_import_accounts_for_every_generated_row(tmp_path: Path) -> None:
    """The benchmark's messy file is really messy, and its import loses nothing (figures aside)."""
    result = cli("bench", "import", "--rows", "3000", "--workdir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["rows"] == 3000
    dropped = sum(report["duplicates"].values())
    assert report["inserted"] + dropped + report["quarantined"] == report["rows"]
    assert {"format.column_count", "missing.customer_id", "invalid.zero_quantity"} <= set(
        report["quarantined_by_rule"]
    )
    assert {"date.reformatted", "money.thousands", "order.return"} <= set(report["repaired"])
    assert report["peak_rss_mb"] > 0 and report["rows_per_s"] > 0
