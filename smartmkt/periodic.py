"""A job a process runs every few seconds (or hours) in the background, until it is stopped: the
catalog follower of each serving process, the webhook sender of each app, the retention schedule
of a deployment. A failed run is logged and the job runs again at its next time; nothing
escapes the thread. Standard library only (the foundation layer)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("smartmkt.periodic")


class Periodic(threading.Thread):
    """Runs ``job`` every ``every_s`` seconds (the first time after one wait, or at once with
    ``at_start``) until ``stop()``. With ``ready``, it first waits for ``ready()`` to say True;
    False ends the thread without a run. A run that raises is logged as ``failed`` says and the
    next one comes at its time."""

    def __init__(
        self,
        name: str,
        every_s: float,
        job: Callable[[], object],
        failed: str,
        at_start: bool = False,
        ready: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.every_s = every_s
        self.job = job
        self.failed = failed
        self.at_start = at_start
        self.ready = ready
        self._stop_event = threading.Event()

    def run(self) -> None:
        if self.ready is not None and not self.ready():
            log.error("%s: not started (what it needs did not come up)", self.name)
            return
        if self.at_start:
            self._run_once()
        while not self._stop_event.wait(self.every_s):
            self._run_once()

    def _run_once(self) -> None:
        try:
            self.job()
        except Exception:  # the store away for a moment, a bug in one run: the next run tries again
            log.warning("%s; trying again in %.0f s", self.failed, self.every_s, exc_info=True)

    def stop(self) -> None:
        self._stop_event.set()

    @property
    def stopping(self) -> bool:
        return self._stop_event.is_set()
