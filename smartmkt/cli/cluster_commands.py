"""``smartmkt cluster up / status / down``: several replicas of every service on this machine,
behind HAProxy, on PostgreSQL, Redis and RabbitMQ (smartmkt.runtime.cluster)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from smartmkt.cli.progress import console, status
from smartmkt.cli.shared import JsonFlag, fail
from smartmkt.settings import get_settings

cluster_app = typer.Typer(help="Several replicas of every service on this machine (see docs/replicas.md).")

RunDir = Annotated[
    Path | None,
    typer.Option(help="Where the engines keep their data and the cluster its state [default: var/cluster]."),
]


def _run_dir(run_dir: Path | None) -> Path:
    return (run_dir or get_settings().var_dir / "cluster").resolve()


@cluster_app.command("up")
def cluster_up(
    replicas: Annotated[int, typer.Option(min=1, max=9, help="Replicas of the app, actions and Rasa.")] = 2,
    port: Annotated[int, typer.Option(help="HAProxy's public port (the others follow from it).")] = 8080,
    run_dir: RunDir = None,
) -> None:
    """Install what is missing (Debian packages), then start PostgreSQL, Redis, RabbitMQ, the
    replicas, the console consumer and HAProxy in the background, and wait until all are healthy."""
    from smartmkt.runtime import cluster
    from smartmkt.runtime.engines import missing_packages

    folder = _run_dir(run_dir)
    state = cluster.ClusterState.read(folder)
    if state is not None and state.supervisor_alive():
        console.print(f"already running (supervisor pid {state.pid}): {state.public_url}")
        raise typer.Exit(0)
    missing = missing_packages()
    if missing:
        _install(missing)
    layout = cluster.Layout.fixed(folder, replicas, port)
    busy = cluster.busy_ports(layout)
    if busy:
        taken = ", ".join(f"{port} ({name})" for name, port in busy.items())
        fail(f"ports in use: {taken}; stop what holds them, or choose others with --port")
    started = time.monotonic()
    log = folder / "cluster.log"
    proc = cluster.start_in_background(layout, log)
    console.print(f"starting {replicas} replica(s) of each service; log: {log}")
    phases = {"preparing": "preparing the store", "launching": "starting the replicas"}
    with status("starting the engines") as spinner:
        try:
            cluster.wait_until_up(
                folder, proc, cluster.UP_TIMEOUT_S, lambda p: spinner.update(phases.get(p, p))
            )
        except cluster.ClusterNotUp as error:
            fail(f"{error}; see {log}")
    console.print(_banner(layout, time.monotonic() - started), soft_wrap=True)


def _install(missing: list[str]) -> None:
    """The engines' Debian packages, by the Makefile's own recipe (`make setup` installs them)."""
    settings = get_settings()
    console.print(f"installing Debian packages: {' '.join(missing)}")
    done = subprocess.run(["make", "-B", "-C", str(settings.project_root), ".setup-stamps/apt"])
    if done.returncode != 0:
        fail(f"could not install {' '.join(missing)} (apt-get failed; run `make setup` as root)")


def _banner(layout: Any, seconds: float) -> str:
    url = layout.public_url
    return (
        f"\n[bold green]the cluster is up[/bold green] in {seconds:.0f} s: "
        f"{layout.replicas} app, {layout.replicas} action and {layout.replicas} Rasa replicas\n"
        f"  web chat          {url}/\n"
        f"  demo shop         {url}/demo-shop\n"
        f"  marketer console  {url}/console\n"
        f"  Rasa REST         {url}/webhooks/rest/webhook\n"
        f"  HAProxy health    {url}/haproxy-health\n"
        "`smartmkt cluster status` lists every process; `smartmkt cluster down` stops them.\n"
    )


@cluster_app.command("status")
def cluster_status(run_dir: RunDir = None, as_json: JsonFlag = False) -> None:
    """Each process of the cluster: its pid, port and health. Exits 1 unless all are healthy."""
    from smartmkt.runtime import cluster
    from smartmkt.runtime.processes import healthy

    state = cluster.ClusterState.read(_run_dir(run_dir))
    if state is None:
        fail(f"no cluster in {_run_dir(run_dir)} (start one with `smartmkt cluster up`)")
        return
    rows = []
    for name, service in state.services.items():
        pid = int(service.get("pid") or 0)
        alive = cluster.alive(pid)
        rows.append(
            {
                "name": name,
                "pid": pid,
                "port": service.get("port"),
                "alive": alive,
                "healthy": alive and healthy(service["health"], timeout=2.0),
            }
        )
    report = {"phase": state.phase, "supervisor": state.pid, "supervisor_alive": state.supervisor_alive()}
    report |= {"public_url": state.public_url, "error": state.error, "services": rows}
    if as_json:
        print(json.dumps(report))
    else:
        _print_status(report)
    if not (state.supervisor_alive() and all(row["healthy"] for row in rows)):
        raise typer.Exit(1)


def _print_status(report: dict[str, Any]) -> None:
    from rich.table import Table

    alive = "running" if report["supervisor_alive"] else "not running"
    console.print(
        f"cluster {report['phase']} ({alive}, supervisor pid {report['supervisor']}): {report['public_url']}"
    )
    if report["error"]:
        console.print(f"[red]error:[/red] {report['error']}", soft_wrap=True)
    table = Table("service", "pid", "port", "health")
    for row in report["services"]:
        health = (
            "[green]healthy[/]"
            if row["healthy"]
            else "[yellow]not answering[/]"
            if row["alive"]
            else "[red]down[/]"
        )
        table.add_row(row["name"], str(row["pid"] or "-"), str(row["port"] or "-"), health)
    console.print(table)


@cluster_app.command("down")
def cluster_down(run_dir: RunDir = None) -> None:
    """Stop every process of the cluster, by process id (the engines' data is kept)."""
    from smartmkt.runtime import cluster

    folder = _run_dir(run_dir)
    state = cluster.ClusterState.read(folder)
    if state is None:
        fail(f"no cluster in {folder}")
        return
    with status("stopping the cluster"):
        killed = cluster.stop(state)
    left = [name for name, s in state.services.items() if cluster.alive(int(s.get("pid") or 0))]
    if left:
        fail(f"still running after SIGKILL: {', '.join(left)}")
    console.print("the cluster is stopped" + (f" (killed: {', '.join(killed)})" if killed else ""))


@cluster_app.command("serve", hidden=True)
def cluster_serve(
    run_dir: Annotated[Path, typer.Option()],
    replicas: Annotated[int, typer.Option()] = 2,
    layout_json: Annotated[str, typer.Option()] = "",
) -> None:
    """The cluster's supervisor in the foreground (what `cluster up` starts in the background)."""
    from smartmkt.runtime import cluster

    layout = (
        cluster.layout_from_dict(run_dir, json.loads(layout_json))
        if layout_json
        else cluster.Layout.fixed(run_dir, replicas)
    )
    raise typer.Exit(cluster.serve(layout, get_settings()))
