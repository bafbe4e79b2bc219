"""Column mapping: detection from the shop's own names, a YAML file's overrides, clear errors."""

from pathlib import Path

import pytest

from smartmkt.data.mapping import MappingError, load_mapping, resolve


def test_detects_common_export_names() -> None:
    mapping = resolve(
        "orders", ("Order No", "Cust ID", "SKU", "Qty", "Total", "Order Date", "Currency"), None
    )
    assert mapping.columns == {
        "order_id": "Order No",
        "customer_id": "Cust ID",
        "product_id": "SKU",
        "quantity": "Qty",
        "amount": "Total",
        "currency": "Currency",
        "ordered_at": "Order Date",
    }
    assert mapping.detected
    assert "customer_id: Cust ID" in mapping.as_yaml()


def test_detects_the_uci_online_retail_export_names() -> None:
    """The most used public retail export (UCI "Online Retail"): its order, product, quantity,
    date, price and customer columns are found without a mapping file (it stopped at once with
    "no column found for required field(s) ['product_id']")."""
    columns = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice")
    mapping = resolve("orders", (*columns, "CustomerID", "Country"), None)
    assert mapping.columns == {
        "order_id": "InvoiceNo",
        "product_id": "StockCode",
        "quantity": "Quantity",
        "ordered_at": "InvoiceDate",
        "unit_price": "UnitPrice",
        "customer_id": "CustomerID",
        "title": "Description",  # the product's name on the line
        "country": "Country",
    }
    # Shopify's "Name" is the order's number, not a product's name
    assert "title" not in resolve("orders", ("Name", "Customer", "SKU", "Created at"), None).columns


def test_cdnow_needs_only_a_constant_product() -> None:
    mapping = resolve(
        "orders",
        ("customer_id", "date", "number_of_cds", "dollar_value"),
        {"constants": {"product_id": "CD"}},
    )
    assert mapping.columns == {
        "customer_id": "customer_id",
        "quantity": "number_of_cds",
        "amount": "dollar_value",
        "ordered_at": "date",
    }


def test_a_mapping_file_wins_over_detection(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yml"
    path.write_text("products:\n  columns:\n    product_id: code\n    title: label\n  dayfirst: true\n")
    mapping = resolve("products", ("code", "label", "id", "name"), load_mapping(path)["products"])
    assert mapping.columns["product_id"] == "code" and mapping.columns["title"] == "label"
    assert mapping.dayfirst


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"columns": {"colour": "x"}}, "unknown store fields"),
        ({"columns": {"product_id": "nope"}}, "not in the file"),
        ({"unknown_references": "ignore"}, "must be 'quarantine' or 'placeholder'"),
        ({"colums": {}}, "unknown mapping keys"),
    ],
)
def test_bad_mappings_say_what_is_wrong(spec: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(MappingError, match=message):
        resolve("products", ("sku", "title"), spec)


def test_missing_required_columns(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="required field"):
        resolve("orders", ("a", "b"), None)
    bad = tmp_path / "m.yml"
    bad.write_text("shipments: {}\n")
    with pytest.raises(MappingError, match="top-level keys"):
        load_mapping(bad)
