"""Draw docs/layers.png: smartmkt's layers, bottom first, and which layers each one imports.

The layers and the import graph come from tests/test_layers.py (the test that enforces them), so
the picture names exactly what the test checks; the layer order is also written into the PNG's
metadata ("layers"), and the test compares it with LAYERS, so a stale picture fails the suite.

    .venv/bin/python tools/draw_layers.py        # writes docs/layers.png
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_layers import LAYERS, import_graph, layer_of  # noqa: E402

OUTPUT = ROOT / "docs" / "layers.png"
SINGLE_FILES = {"settings", "wellformed", "periodic", "catalog"}  # modules at smartmkt/ root, not packages
BAND_HEIGHT, GAP, WIDTH = 0.8, 0.25, 10.0


def layer_metadata() -> str:
    """The layer order as the PNG records it: one name per line, bottom first."""
    return "\n".join(name for name, _ in LAYERS)


def short(prefix: str) -> str:
    """How a module prefix reads inside its band: smartmkt.store -> store/, actions -> actions/."""
    name = prefix.removeprefix("smartmkt.")
    return name.replace(".", "/") + ("/" if "." not in name and name not in SINGLE_FILES else ".py")


def draw(output: Path = OUTPUT) -> None:
    graph = import_graph()
    modules = Counter(layer_of(m) for m in graph)
    arrows = Counter(
        (layer_of(source), layer_of(target))
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) != layer_of(source)
    )
    figure, axes = plt.subplots(figsize=(12, 1.05 * len(LAYERS) + 1))
    for level, (name, prefixes) in enumerate(LAYERS):
        y = level * (BAND_HEIGHT + GAP)
        axes.add_patch(
            FancyBboxPatch((0, y), WIDTH, BAND_HEIGHT, boxstyle="round,pad=0.02", fc="#eef3fb", ec="#4a6fa5")
        )
        axes.text(0.15, y + BAND_HEIGHT * 0.68, f"{level + 1}. {name}", fontsize=11, weight="bold")
        axes.text(0.15, y + BAND_HEIGHT * 0.25, "  ".join(short(p) for p in prefixes), fontsize=8.5)
        axes.text(WIDTH - 0.15, y + BAND_HEIGHT * 0.68, f"{modules[level]} modules", fontsize=8, ha="right")
    for i, ((source, target), count) in enumerate(sorted(arrows.items())):
        x = WIDTH + 0.3 + 0.22 * (source % 10) + 0.04 * (i % 3)
        start = source * (BAND_HEIGHT + GAP) + 0.1
        end = target * (BAND_HEIGHT + GAP) + BAND_HEIGHT - 0.1
        axes.add_patch(
            FancyArrowPatch(
                (x, start),
                (x, end),
                arrowstyle="-|>",
                mutation_scale=8,
                lw=0.4 + min(count, 40) / 20,
                color=plt.cm.tab10(source % 10),
                alpha=0.8,
            )
        )
    axes.text(
        WIDTH + 0.3,
        len(LAYERS) * (BAND_HEIGHT + GAP) - GAP + 0.05,
        "imports (all point down;\nwidth: how many)",
        fontsize=8,
    )
    axes.set_xlim(-0.2, WIDTH + 2.7)
    axes.set_ylim(-0.3, len(LAYERS) * (BAND_HEIGHT + GAP) + 0.4)
    axes.axis("off")
    axes.set_title("smartmkt's layers, bottom first: a module imports only its own layer or lower ones")
    figure.tight_layout()
    figure.savefig(output, dpi=110, metadata={"layers": layer_metadata(), "Software": None})
    plt.close(figure)


if __name__ == "__main__":
    draw()
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
