"""Imports point down the layers and never go round in a circle.

Every module of smartmkt/, actions/ and bot/ is parsed with ``ast`` (nothing is imported), and
every import counts, lazy ones inside functions included. A module may import its own layer or a
lower one; an import of a higher layer is a back-arrow and fails, and so does any circle. The
layer order is written down here and in docs/architecture.md; keep both in step.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom to top. A module belongs to the first prefix that matches its dotted name (a package
# prefix covers every module below it), so list the specific names before their package.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "foundation",
        (
            "smartmkt.settings",
            "smartmkt.wellformed",
            "smartmkt.periodic",  # the background jobs' thread (catalog, webhooks, retention)
            "smartmkt.catalog",
            "smartmkt.privacy.redact",  # masking: also imported by Rasa's environment
            "smartmkt.privacy.rasa_events",
            "smartmkt.security.identity",  # customer tokens: also imported by Rasa's environment
        ),
    ),
    ("store", ("smartmkt.store",)),
    (
        "domain",
        (
            "smartmkt.offers",
            "smartmkt.recommend",
            "smartmkt.predict",
            "smartmkt.nlu",
            "smartmkt.speech",
            "smartmkt.data",
            "smartmkt.security",
            "smartmkt.console",
            "smartmkt.notify",
        ),
    ),
    ("privacy operations", ("smartmkt.privacy",)),
    ("model lifecycle", ("smartmkt.lifecycle",)),
    ("assistant", ("smartmkt.assistant",)),
    ("processes", ("smartmkt.runtime",)),
    ("front doors", ("smartmkt.web", "actions", "bot")),
    ("benchmarks", ("smartmkt.bench",)),
    ("command line", ("smartmkt.cli",)),
]


def module_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for package in ("smartmkt", "actions"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # Alembic's revisions: loaded by Alembic, not imported
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts != ["smartmkt"]:  # the package's own __init__: its public API, above all
                files[".".join(parts)] = path
    for path in (ROOT / "bot").glob("*.py"):
        files[f"bot.{path.stem}"] = path
    return files


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name ``module`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names.add(source)
            names.update(f"{source}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports (a package's empty __init__ aside)."""
    files = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = set()
        for name in imported_names(module, path):
            parts = name.split(".")
            for end in range(len(parts), 0, -1):
                candidate = ".".join(parts[:end])
                if candidate in files or candidate == "smartmkt":
                    if candidate in files and candidate != module and files[candidate].name != "__init__.py":
                        targets.add(candidate)
                    break
        graph[module] = targets
    return graph


def layer_of(module: str) -> int:
    for level, (_name, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and docs/architecture.md)")


def back_arrows(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{source} ({LAYERS[layer_of(source)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(source)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer() -> None:
    for module in module_files():
        layer_of(module)


def test_no_circles() -> None:
    assert circles(import_graph()) == []


def test_imports_point_down() -> None:
    assert back_arrows(import_graph()) == []


def test_actions_go_through_the_assistant_only() -> None:
    """One door: the Rasa actions use smartmkt only through the assistant's public API
    (smartmkt.assistant, whose __all__ names it), never the store, recommender or settings."""
    graph = import_graph()
    doors = {
        module: sorted(t for t in targets if t.startswith("smartmkt.") and t != "smartmkt.assistant")
        for module, targets in graph.items()
        if module.startswith("actions")
    }
    assert doors and all(not others for others in doors.values()), doors
    import smartmkt.assistant as assistant

    used = set()
    for module in doors:
        path = module_files()[module]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "smartmkt.assistant":
                used.update(alias.name for alias in node.names)
    assert used <= set(assistant.__all__), used - set(assistant.__all__)


def test_the_layer_order_is_written_in_the_docs() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    positions = [doc.find(f"**{name}**") for name, _ in LAYERS]
    assert all(p >= 0 for p in positions), "docs/architecture.md names every layer in bold"
    assert positions == sorted(positions), "and in the same order, bottom first"


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ("from smartmkt.cli.main import app", "smartmkt.store.planted (store) imports smartmkt.cli.main"),
        ("def f():\n    from smartmkt.assistant import ShopAssistant", "imports smartmkt.assistant"),
    ],
    ids=["top-level", "lazy"],
)
def test_a_planted_back_import_is_caught(planted: str, expected: str, tmp_path: Path) -> None:
    """The checks above can fail: a store module importing the command line (or, lazily, the
    assistant) is reported, and a planted circle is found."""
    graph = import_graph()
    source = tmp_path / "planted.py"
    source.write_text(planted + "\n")
    names = imported_names("smartmkt.store.planted", source)
    graph["smartmkt.store.planted"] = {n for n in names if n in graph}
    assert any(expected in arrow for arrow in back_arrows(graph))
    graph["smartmkt.cli.main"] = graph.get("smartmkt.cli.main", set()) | {"smartmkt.store.planted"}
    graph["smartmkt.store.planted"].add("smartmkt.cli.main")
    assert ["smartmkt.cli.main", "smartmkt.store.planted"] in circles(graph)


def test_the_layers_picture_shows_these_layers() -> None:
    """docs/layers.png records the layer order it was drawn from (tools/draw_layers.py)."""
    from PIL import Image

    with Image.open(ROOT / "docs" / "layers.png") as picture:
        drawn = picture.info.get("layers", "")
    assert drawn.split("\n") == [name for name, _ in LAYERS], "redraw: .venv/bin/python tools/draw_layers.py"
