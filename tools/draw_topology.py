"""Draw docs/topology.png: the replicated topology of docs/replicas.md (`smartmkt cluster up`).

Every port and route comes from the code: the ports from ``Layout.fixed`` (the documented ports,
2 replicas) and HAProxy's routes from ``Layout.balancer()``. Each box with a port is also written
into the PNG's metadata ("services": sorted "name:port" lines), and tests/test_topology_picture.py
compares it with the code, so a stale picture fails the suite.

    .venv/bin/python tools/draw_topology.py        # writes docs/topology.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from smartmkt.runtime.balancer import Backend, Balancer  # noqa: E402
from smartmkt.runtime.cluster import Layout  # noqa: E402

OUTPUT = ROOT / "docs" / "topology.png"
REPLICAS = 2
WIDTH, HEIGHT = 100.0, 75.0  # drawing units; the figure is 10 x 7.5 inches at 100 dpi
COLOURS = {  # (fill, edge)
    "client": ("#f4f4f4", "#666666"),
    "haproxy": ("#fff3d6", "#b7862b"),
    "app": ("#e4eefb", "#4a6fa5"),
    "rasa": ("#fbe9e4", "#b0583e"),
    "actions": ("#e6f4e6", "#4c8a4c"),
    "engine": ("#efe8f7", "#6e54a3"),
    "consumer": ("#e8f4f6", "#3f8a96"),
}


def layout() -> Layout:
    """The documented layout (cheap: nothing is started, no engine folder is prepared)."""
    return Layout.fixed(Path("/unused"), replicas=REPLICAS)


def services(cluster: Layout) -> list[tuple[str, int]]:
    """Every box with a port that the picture draws, as (name, port)."""
    found = [("haproxy", cluster.public_port), ("haproxy", cluster.actions_port)]
    for kind, ports in (
        ("app", cluster.app_ports),
        ("actions", cluster.action_ports),
        ("rasa", cluster.rasa_ports),
    ):
        found += [(f"{kind}{number}", port) for number, port in enumerate(ports, start=1)]
    found.append(("consumer", cluster.consumer_port))
    engines = cluster.engines
    found += [
        ("postgres", engines.postgres_port),
        ("redis", engines.redis_port),
        ("rabbitmq", engines.rabbitmq_port),
    ]
    return found


def services_metadata(cluster: Layout | None = None) -> str:
    """The "services" metadata the PNG records: sorted "name:port" lines."""
    return "\n".join(sorted(f"{name}:{port}" for name, port in services(cluster or layout())))


def routes_by_backend(balancer: Balancer) -> dict[str, tuple[Backend, list[str]]]:
    """The public port's path prefixes, grouped by the pool they go to."""
    grouped: dict[str, tuple[Backend, list[str]]] = {}
    for prefix, backend in balancer.routes.items():
        grouped.setdefault(backend.name, (backend, []))[1].append(prefix)
    return grouped


class Picture:
    def __init__(self, axes: Axes) -> None:
        self.axes = axes
        self.drawn: list[tuple[str, int]] = []  # every box with a port, checked against services()

    def box(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        text: str,
        colours: tuple[str, str],
        *,
        size: float = 10,
        weight: str = "normal",
        port: tuple[str, int] | None = None,
        lw: float = 1.2,
        style: str = "round,pad=0.3,rounding_size=0.8",
    ) -> None:
        fill, edge = colours
        self.axes.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, fc=fill, ec=edge, lw=lw))
        self.axes.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, weight=weight)
        if port:
            self.drawn.append(port)

    def arrow(
        self,
        start: tuple[float, float],
        end: tuple[float, float],
        colour: str = "#444444",
        *,
        bend: float = 0.0,
        both: bool = False,
    ) -> None:
        self.axes.add_patch(
            FancyArrowPatch(
                start,
                end,
                arrowstyle="<|-|>" if both else "-|>",
                mutation_scale=12,
                lw=1.3,
                color=colour,
                shrinkA=0,
                shrinkB=0,
                connectionstyle=f"arc3,rad={bend}",
            )
        )

    def label(
        self, x: float, y: float, text: str, *, ha: str = "left", size: float = 8.5, colour: str = "#333333"
    ) -> None:
        self.axes.text(x, y, text, ha=ha, va="center", fontsize=size, color=colour, style="italic")

    def pool(self, x: float, top: float, w: float, kind: str, ports: tuple[int, ...], what: str) -> float:
        """A frame holding the replicas of one kind, stacked; returns the frame's bottom."""
        fill, edge = COLOURS[kind]
        inner, gap, head = 4.2, 1.0, 5.0
        h = head + len(ports) * (inner + gap)
        bottom = top - h
        self.axes.add_patch(
            FancyBboxPatch(
                (x, bottom),
                w,
                h,
                boxstyle="round,pad=0.3,rounding_size=1.0",
                fc="white",
                ec=edge,
                lw=1.4,
                ls="--",
            )
        )
        self.axes.text(
            x + w / 2,
            top - 1.6,
            f"{kind} ×{len(ports)}",
            ha="center",
            va="center",
            fontsize=10.5,
            weight="bold",
        )
        self.axes.text(x + w / 2, top - 3.6, what, ha="center", va="center", fontsize=8, color="#555555")
        for number, port in enumerate(ports, start=1):
            y = top - head - number * (inner + gap) + gap
            self.box(
                x + 1.2,
                y,
                w - 2.4,
                inner,
                f"{kind}{number}  :{port}",
                (fill, edge),
                size=9.5,
                port=(f"{kind}{number}", port),
            )
        return bottom


def draw(output: Path = OUTPUT) -> None:
    cluster = layout()
    balancer = cluster.balancer()
    engines = cluster.engines
    routes = routes_by_backend(balancer)
    (internal_port, internal), *_ = balancer.internal.items()

    figure = plt.figure(figsize=(10, 7.5))
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, WIDTH)
    axes.set_ylim(0, HEIGHT)
    axes.axis("off")
    p = Picture(axes)

    # the supervisor: a frame round every process it starts and restarts
    axes.add_patch(
        FancyBboxPatch(
            (1.5, 1.0),
            97,
            63.5,
            boxstyle="round,pad=0,rounding_size=1.5",
            fc="#fbfbfb",
            ec="#999999",
            lw=1.2,
            ls=":",
        )
    )
    axes.text(
        3,
        62.4,
        "supervisor (smartmkt cluster serve)",
        fontsize=10,
        weight="bold",
        color="#555555",
        va="center",
    )
    axes.text(
        3,
        60.2,
        "starts everything in this frame,\nrestarts whatever dies",
        fontsize=8,
        color="#666666",
        va="top",
    )

    # the client and the public port
    p.box(38, 68.5, 24, 4.5, "browser / shop", COLOURS["client"], size=10.5, weight="bold")
    p.box(
        30,
        53,
        40,
        5.5,
        f"HAProxy  :{balancer.public_port}",
        COLOURS["haproxy"],
        size=11,
        weight="bold",
        port=("haproxy", balancer.public_port),
    )
    p.arrow((50, 68.2), (50, 58.8))

    # the pools
    top = 45.0
    app_bottom = p.pool(
        4, top, 20, balancer.default.name, balancer.default.ports, "FastAPI: pages, chat, console"
    )
    rasa = next(backend for backend, _ in routes.values() if not backend.sticky)  # the replicas
    rasa_bottom = p.pool(39, top, 22, rasa.name, rasa.ports, "Rasa 3.6")
    actions_bottom = p.pool(77, top, 20, internal.name, internal.ports, "rasa-sdk action server")

    # public routes
    p.arrow((33, 52.7), (18, top + 0.6))
    p.label(7.5, 50.0, "everything else\n(pages, /chat, /voice,\nconsole, /model/parse)", size=8)
    p.arrow((46, 52.7), (46, top + 0.6))
    lines = [
        ", ".join(prefixes) + (": sticky (cookie)" if backend.sticky else ": in turn")
        for backend, prefixes in routes.values()
    ]
    p.label(45.2, 49.0, "\n".join(lines), ha="right", size=8)
    # Rasa's NLU calls go back through the public port to the app
    p.arrow((56, top + 0.6), (60, 52.7), colour=COLOURS["rasa"][1])
    p.label(60.5, 49.0, "NLU\n/model/parse", size=8, colour=COLOURS["rasa"][1])

    # the action calls through the internal port
    p.box(
        64.5,
        31.5,
        10,
        5.0,
        f"HAProxy\n:{internal_port}",
        COLOURS["haproxy"],
        size=9.5,
        weight="bold",
        port=("haproxy", internal_port),
    )
    p.arrow((61.6, 34.0), (64.2, 34.0), colour=COLOURS["rasa"][1])
    p.label(69.5, 38.6, "action calls", ha="center", size=8, colour=COLOURS["rasa"][1])
    p.arrow((74.8, 34.0), (76.4, 34.0))

    # the engines Rasa uses, and the consumer
    row = 16.5
    small_boxes = (  # x, width, name as drawn, port key, port, what it does there, colour
        (30, 13, "Redis", "redis", engines.redis_port, "lock store", "engine"),
        (50, 15, "RabbitMQ", "rabbitmq", engines.rabbitmq_port, "events", "engine"),
        (71, 14, "consumer", "consumer", cluster.consumer_port, "console index", "consumer"),
    )
    for x, w, title, key, port, what, colour in small_boxes:
        p.box(x, row, w, 5.5, f"{title}  :{port}\n{what}", COLOURS[colour], size=9, port=(key, port))
    p.arrow((43, rasa_bottom - 0.4), (38, row + 5.9), colour=COLOURS["rasa"][1])
    p.label(31.5, 25.0, "conversation\nlocks", size=8, colour=COLOURS["rasa"][1])
    p.arrow((55, rasa_bottom - 0.4), (57, row + 5.9), colour=COLOURS["rasa"][1])
    p.label(57.0, 25.0, "every stored\nevent", size=8, colour=COLOURS["rasa"][1])
    p.arrow((65.4, row + 2.75), (70.6, row + 2.75))

    # PostgreSQL, used by every service
    p.box(
        4,
        3,
        93,
        5.5,
        f"PostgreSQL  :{engines.postgres_port}    "
        "the store  ·  Rasa's tracker store  ·  the console's conversation index",
        COLOURS["engine"],
        size=10,
        weight="bold",
        port=("postgres", engines.postgres_port),
    )
    edge = COLOURS["engine"][1]
    p.arrow((14, app_bottom - 0.4), (14, 8.9), colour=edge, both=True)
    p.arrow((47, rasa_bottom - 0.4), (47, 8.9), colour=edge, both=True)
    p.arrow((78, row - 0.4), (78, 8.9), colour=edge)
    p.arrow((91, actions_bottom - 0.4), (91, 8.9), colour=edge, both=True)
    p.label(15, 12.5, "app, actions, rasa, consumer\nread and write PostgreSQL", size=8, colour=edge)

    drawn = sorted(f"{name}:{port}" for name, port in p.drawn)
    assert "\n".join(drawn) == services_metadata(cluster), f"boxes drawn {drawn} differ from services()"
    figure.savefig(
        output,
        dpi=100,
        facecolor="white",
        metadata={"services": services_metadata(cluster), "Software": None},
    )
    plt.close(figure)


if __name__ == "__main__":
    draw()
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
