"""Column mapping: detection from the shop's own names, a YAML file's overrides, clear errors."""

from pathlib import Path

import pytest
import yaml

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


def test_detects_shopify_and_woocommerce_line_item_exports() -> None:
    """Shopify's orders export (a row per line item): the line's fields, the order's number in
    "Name", the buyer's e-mail as their id; "Total" and "Subtotal" are the whole order's, so
    never a line's amount (the line's is its price times its quantity)."""
    shopify = (
        "Name", "Email", "Financial Status", "Currency", "Subtotal", "Shipping", "Total",
        "Created at", "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem sku",
        "Billing Country", "Shipping Country", "Id", "Vendor",
    )  # fmt: skip
    assert resolve("orders", shopify, None).columns == {
        "order_id": "Name",
        "customer_id": "Email",
        "product_id": "Lineitem sku",
        "quantity": "Lineitem quantity",
        "unit_price": "Lineitem price",
        "currency": "Currency",
        "ordered_at": "Created at",
        "title": "Lineitem name",
        "country": "Billing Country",
    }
    woo = ("Order ID", "Order Date", "Customer ID", "Billing Email", "Order Currency", "Order Total",
           "Item SKU", "Item Name", "Item Quantity", "Item Cost", "Billing Country")  # fmt: skip
    assert resolve("orders", woo, None).columns == {
        "order_id": "Order ID",
        "customer_id": "Customer ID",  # an id column wins over the e-mail address
        "product_id": "Item SKU",
        "quantity": "Item Quantity",
        "unit_price": "Item Cost",
        "currency": "Order Currency",
        "ordered_at": "Order Date",
        "title": "Item Name",
        "country": "Billing Country",
    }
    # without line-item columns, a "Total" is the line's amount, as before
    assert resolve("orders", ("Order", "Customer", "SKU", "Total", "Date"), None).columns["amount"] == "Total"


def test_an_unsure_detection_prints_the_mapping_to_complete() -> None:
    """Required fields detection cannot place: the error carries the mapping it would use, as
    YAML with those fields left empty, which, once filled in, imports the file."""
    columns = ("Buyer", "Article Nr", "When", "Pieces")
    with pytest.raises(MappingError) as caught:
        resolve("orders", columns, None)
    suggestion = caught.value.suggestion
    assert suggestion is not None
    assert "# Columns not used yet: Buyer, Article Nr, When" in suggestion
    document = yaml.safe_load(suggestion)
    assert document == {
        "orders": {
            "columns": {"quantity": "Pieces", "customer_id": None, "product_id": None, "ordered_at": None}
        }
    }
    document["orders"]["columns"].update(customer_id="Buyer", product_id="Article Nr", ordered_at="When")
    assert resolve("orders", columns, document["orders"]).columns["ordered_at"] == "When"
    # a field left empty in the file is not a column named "None"
    document["orders"]["columns"]["ordered_at"] = None
    with pytest.raises(MappingError, match=r"required field\(s\) \['ordered_at'\]"):
        resolve("orders", columns, document["orders"])


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
