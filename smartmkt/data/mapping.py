"""How a shop's columns map onto the store's fields: from a YAML file, or detected.

A mapping file (all keys optional):

    orders:                       # one section per kind: customers, products, orders
      columns:                    # store field: the file's column
        customer_id: CustNo
        ordered_at: Date
      header: [customer_id, ordered_at, quantity, amount]   # names for a headerless file
      constants: {product_id: CD, currency: USD}             # a value for every row
      dayfirst: false             # "03/05/2024" is 3 May when true
      unknown_references: quarantine   # or: placeholder (create the missing customer/product)
    products:
      category_separator: "|;,"   # the characters that separate categories in one cell
      skip_categories: [unknown]  # category names that mean "none"
      title_article_last: false   # true: "Usual Suspects, The" -> "The Usual Suspects"

Without a mapping, columns are matched to fields by name ("Customer ID", "cust_id", "user" ->
customer_id ...); the detected mapping is printed so a person can save and correct it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from smartmkt.data.formats import normalize_column

KINDS = ("customers", "products", "orders")

FIELDS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "created_at", "age", "gender", "occupation", "postal_code", "country"),
    "products": ("product_id", "title", "category", "price", "currency", "year", "active"),
    "orders": (
        "order_id",
        "customer_id",
        "product_id",
        "quantity",
        "unit_price",
        "amount",
        "currency",
        "ordered_at",
        "title",  # the product's name on the line: names a placeholder or an order-named product
        "category",
        "country",  # the customer's: fills in a customer's country the store does not have
    ),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",),
    "products": ("product_id", "title"),
    "orders": ("customer_id", "product_id", "ordered_at"),
}

SYNONYMS: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customerid",
        "customer",
        "custid",
        "custno",
        "clientid",
        "client",
        "userid",
        "user",
        "buyerid",
        "accountid",
        "memberid",
        "shopperid",
        # no id column at all (Shopify's orders export): the buyer's e-mail address is their id
        "customeremail",
        "email",
        "billingemail",
        "emailaddress",
    ),
    "product_id": (
        "productid",
        "product",
        "sku",
        "itemid",
        "item",
        "articleid",
        "article",
        "productcode",
        "asin",
        "ean",
        "upc",
        "movieid",
        "stockcode",  # the UCI Online Retail export
    ),
    "order_id": (
        "orderid",
        "order",
        "orderno",
        "ordernumber",
        "invoice",
        "invoiceno",
        "invoiceid",
        "transactionid",
        "transaction",
        "receipt",
    ),
    "title": ("title", "name", "productname", "itemname", "movietitle", "description"),
    "category": ("category", "genre", "genres", "class", "department", "productcategory", "type"),
    "price": ("price", "unitprice", "listprice", "retailprice", "msrp"),
    "unit_price": ("unitprice", "price", "itemprice"),
    "currency": ("currency", "cur", "ccy", "currencycode", "ordercurrency"),
    "quantity": ("quantity", "qty", "units", "numberofcds", "count", "amountunits", "pieces"),
    "amount": (
        "amount",
        "total",
        "linetotal",
        "dollarvalue",
        "dollars",
        "value",
        "revenue",
        "sales",
        "totalprice",
        "subtotal",
    ),
    "ordered_at": (
        "orderedat",
        "orderdate",
        "date",
        "timestamp",
        "time",
        "purchasedate",
        "createdat",
        "datetime",
        "invoicedate",
        "transactiondate",
    ),
    "created_at": ("createdat", "signupdate", "registered", "joined", "since", "firstseen"),
    "year": ("year", "releaseyear", "releasedate"),
    "age": ("age",),
    "gender": ("gender", "sex"),
    "occupation": ("occupation", "job", "profession"),
    "postal_code": ("postalcode", "zip", "zipcode", "postcode", "plz"),
    "country": ("country", "countrycode", "customercountry", "billingcountry", "shippingcountry"),
    "active": ("active", "enabled", "available", "instock", "isactive"),
}


# In an orders file a bare "name" or "type" is rarely the product's (Shopify's "Name" is the
# order's number): only names that say "product" or "item" are taken there.
KIND_SYNONYMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("orders", "title"): (
        "productname",
        "producttitle",
        "itemname",
        "itemtitle",
        "description",
        "productdescription",
        "movietitle",
    ),
    ("orders", "category"): ("productcategory", "itemcategory", "genre", "genres", "department"),
}


# Shopify's and WooCommerce's order exports have a row per line item, with the order's own fields
# beside the line's: "Lineitem sku" / "Item SKU" is the product, "Name" is the order's number,
# and "Total" or "Subtotal" is the whole order's, so never a line's amount there.
LINE_ITEM_COLUMNS = ("lineitemsku", "itemsku", "lineitemname", "itemname")  # such a file has one
LINE_ITEM_SYNONYMS: dict[str, tuple[str, ...]] = {
    "order_id": ("orderid", "ordernumber", "orderno", "order", "name"),
    "product_id": ("lineitemsku", "itemsku", "lineitemproductid", "itemproductid", "productid", "sku"),
    "title": ("lineitemname", "itemname", "lineitemtitle", "itemtitle", "productname"),
    "category": ("lineitemcategory", "itemcategory", "lineitemproducttype", "productcategory"),
    "quantity": ("lineitemquantity", "itemquantity", "itemqty", "quantity", "qty"),
    "unit_price": ("lineitemprice", "itemprice", "itemcost", "unitprice"),
    "amount": ("lineitemtotal", "itemtotal", "linetotal", "lineitemamount"),
}


def line_item_layout(columns: tuple[str, ...]) -> bool:
    """An orders export with a row per line item and the line's fields named as such ("Lineitem
    sku", "Item Name"): its unprefixed money columns are the order's."""
    return any(normalize_column(c) in LINE_ITEM_COLUMNS for c in columns)


def says_currency(mapping: KindMapping) -> bool:
    """Whether a products or orders file gives its currency (a column, or a mapping constant)."""
    return "currency" in mapping.columns or "currency" in mapping.constants


PRODUCT_OPTIONS = ("category_separator", "skip_categories", "title_article_last")
OPTION_NAMES = ("dayfirst", "unknown_references", *PRODUCT_OPTIONS)


def _option_values(spec: dict[str, Any]) -> dict[str, Any]:
    """The reading options of a mapping spec (or of stored ``options()``), defaults filled in."""
    return {
        "dayfirst": bool(spec.get("dayfirst", False)),
        "unknown_references": str(spec.get("unknown_references", "quarantine")),
        "category_separator": str(spec.get("category_separator", "|;,")) or "|;,",
        "skip_categories": tuple(str(c) for c in spec.get("skip_categories") or ()),
        "title_article_last": bool(spec.get("title_article_last", False)),
    }


class MappingError(ValueError):
    """A mapping file that cannot be used, or a file whose required columns are not found.
    ``suggestion``: for the latter, the mapping detection would use, as a YAML file to edit."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


@dataclass
class KindMapping:
    kind: str
    columns: dict[str, str] = field(default_factory=dict)  # store field -> source column
    header: tuple[str, ...] = ()
    constants: dict[str, Any] = field(default_factory=dict)
    dayfirst: bool = False
    unknown_references: str = "quarantine"
    category_separator: str = "|;,"
    skip_categories: tuple[str, ...] = ()
    title_article_last: bool = False
    detected: bool = False

    def options(self) -> dict[str, Any]:
        """What a quarantined row keeps of its file's mapping, so a retry reads it the same way."""
        values = {name: getattr(self, name) for name in OPTION_NAMES}
        values["skip_categories"] = list(self.skip_categories)
        return {
            **values,
            "columns": dict(self.columns),
            "constants": {k: str(v) for k, v in self.constants.items()},
        }

    @classmethod
    def from_options(cls, kind: str, columns: dict[str, str], options: dict[str, Any]) -> KindMapping:
        """The mapping ``options()`` described, over ``columns`` (store field -> column)."""
        return cls(kind, columns, **_option_values(options))

    def as_yaml(self) -> str:
        body: dict[str, Any] = {"columns": dict(self.columns)}
        if self.header:
            body["header"] = list(self.header)
        if self.constants:
            body["constants"] = dict(self.constants)
        return yaml.safe_dump({self.kind: body}, sort_keys=False)


def load_mapping(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None:
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read the mapping: {exc}") from exc
    if not isinstance(document, dict) or set(document) - set(KINDS):
        raise MappingError(f"{path}: top-level keys must be among {', '.join(KINDS)}")
    return document


def resolve(kind: str, columns: tuple[str, ...], spec: dict[str, Any] | None) -> KindMapping:
    """The mapping for one file: the spec's choices, plus detection for fields it leaves out."""
    spec = dict(spec or {})
    unknown = set(spec) - {"columns", "header", "constants", *OPTION_NAMES}
    if kind != "products" and set(spec) & set(PRODUCT_OPTIONS):
        raise MappingError(f"{kind}: {sorted(set(spec) & set(PRODUCT_OPTIONS))} apply to products only")
    if unknown:
        raise MappingError(f"{kind}: unknown mapping keys {sorted(unknown)}")
    header = tuple(spec.get("header") or ())
    available = header or columns
    chosen = {str(k): str(v) for k, v in (spec.get("columns") or {}).items() if v is not None}
    bad_fields = set(chosen) - set(FIELDS[kind])
    if bad_fields:
        raise MappingError(
            f"{kind}: unknown store fields {sorted(bad_fields)}; fields: {', '.join(FIELDS[kind])}"
        )
    missing_cols = [c for c in chosen.values() if c not in available]
    if missing_cols:
        raise MappingError(f"{kind}: columns {missing_cols} are not in the file (it has {list(available)})")
    constants = dict(spec.get("constants") or {})
    detected = _detect(kind, available, taken={*chosen.values()}, skip={*chosen, *constants})
    mapping = KindMapping(
        kind=kind,
        columns={**detected, **chosen},
        header=header,
        constants=constants,
        detected=bool(detected),
        **_option_values(spec),
    )
    if mapping.unknown_references not in ("quarantine", "placeholder"):
        raise MappingError(f"{kind}: unknown_references must be 'quarantine' or 'placeholder'")
    absent = [f for f in REQUIRED[kind] if f not in mapping.columns and f not in constants]
    if absent:
        raise MappingError(
            f"{kind}: no column found for required field(s) {absent} among {list(available)}; "
            "name them in a mapping file (--mapping)",
            suggestion=suggested_yaml(mapping, absent, available),
        )
    return mapping


def suggested_yaml(mapping: KindMapping, absent: list[str], available: tuple[str, ...]) -> str:
    """The mapping detection found, as a file to complete: each field it could not place is
    listed with an empty column name, and the file's columns are listed in a comment."""
    columns: dict[str, str | None] = {**mapping.columns, **dict.fromkeys(absent)}
    unused = [c for c in available if c not in mapping.columns.values()]
    body = yaml.safe_dump({mapping.kind: {"columns": columns}}, sort_keys=False, allow_unicode=True)
    lines = [
        f"# A mapping for this {mapping.kind} file: put a column's name after each field left empty",
        f"# ({', '.join(absent)}), check the others, then import again with --mapping THIS_FILE.",
        "# Columns not used yet: " + (", ".join(unused) or "none"),
        *(line.replace(": null", ":  # which column?") for line in body.splitlines()),
    ]
    return "\n".join(lines) + "\n"


def _detect(kind: str, columns: tuple[str, ...], taken: set[str], skip: set[str]) -> dict[str, str]:
    by_key = {normalize_column(c): c for c in columns}
    found: dict[str, str] = {}
    used = set(taken)
    line_items = kind == "orders" and line_item_layout(columns)
    for store_field in FIELDS[kind]:
        if store_field in skip:
            continue
        synonyms = KIND_SYNONYMS.get((kind, store_field), SYNONYMS.get(store_field, ()))
        if line_items and store_field in LINE_ITEM_SYNONYMS:
            synonyms = LINE_ITEM_SYNONYMS[store_field]
        for candidate in (normalize_column(store_field), *synonyms):
            column = by_key.get(candidate)
            if column is not None and column not in used:
                found[store_field] = column
                used.add(column)
                break
    # A bare "id" column is the entity's own id in a customers or products file.
    own_id = {"customers": "customer_id", "products": "product_id"}.get(kind)
    column = by_key.get("id")
    if own_id and own_id not in found and own_id not in skip and column and column not in used:
        found[own_id] = column
    return found
