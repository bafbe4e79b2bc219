"""docs/topology.png shows the ports the code uses (tools/draw_topology.py draws it from
``Layout.fixed`` and ``Layout.balancer()`` and records every box's "name:port" in its metadata)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from draw_topology import services_metadata  # noqa: E402


def test_the_topology_picture_shows_these_ports() -> None:
    from PIL import Image

    with Image.open(ROOT / "docs" / "topology.png") as picture:
        drawn = picture.info.get("services", "")
    assert drawn == services_metadata(), "stale picture: run .venv/bin/python tools/draw_topology.py"
