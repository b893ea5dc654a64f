"""After an upload, a pipeline run: `hmo run` in a child process, one at a time, once more if files came meanwhile.

A child and not a call in this process: the run takes the writer lock and
starts its own Prefect flow (and, without a configured API, a temporary
Prefect server), exactly as an operator's `hmo run` does, so the portal adds
no second way through the stages; and the service stays responsive while dbt
and Great Expectations work. `--wait` lets it queue behind a run the operator
started. Its output goes to `<data>/logs/portal-runs.log`.

`HMO_PORTAL_RUNS=off` leaves the inbox to a scheduled or manual `hmo run`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading

from hmo.settings import Paths

WAIT_SECONDS = 3600


class RunRequester:
    def __init__(self, paths: Paths, enabled: bool | None = None) -> None:
        self.paths = paths
        self.enabled = os.environ.get("HMO_PORTAL_RUNS", "on").strip().lower() != "off" if enabled is None \
            else enabled
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._again = False

    @property
    def running(self) -> bool:
        with self._lock:
            return self._child is not None and self._child.poll() is None

    def request(self) -> None:
        """A run soon: now if none is under way, else right after the one under way."""
        if not self.enabled:
            return
        with self._lock:
            if self._child is not None and self._child.poll() is None:
                self._again = True
                return
            self._start()

    def _start(self) -> None:
        log_folder = self.paths.root / "logs"
        log_folder.mkdir(parents=True, exist_ok=True)
        with (log_folder / "portal-runs.log").open("ab") as log:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "flows.cli", "run", "--wait", str(WAIT_SECONDS)],
                env={**os.environ, "HMO_DATA_DIR": str(self.paths.root)},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        threading.Thread(target=self._follow, args=(self._child,), daemon=True).start()

    def _follow(self, child: subprocess.Popen[bytes]) -> None:
        child.wait()
        with self._lock:
            if self._again and self._child is child:
                self._again = False
                self._start()

    def stop(self) -> None:
        """On the service's way out: the run under way is asked to stop (SIGTERM), as Ctrl-C would."""
        with self._lock:
            self._again = False
            child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
