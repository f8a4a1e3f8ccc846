"""The dashboard's background ``genrl behave`` job: one at a time, in a child process, with progress.

The job is the ordinary command line (``python -m genrl.app.cli behave ...``) run as a child process whose output
goes to ``OUT/app_job.log``; progress is read from its progress bar (``N/M``) in that log. Training resumes from the
run's checkpoint like any ``genrl behave``: starting the same run again (after a stop, a crash or a restart of the
app) continues where it stopped. Only one job runs at a time (the CPU is the bottleneck); the app stops its job
when it exits.

Usage::

    job = BehaveJob()
    job.start(["walker", "--task", "walker_stand", "--out", "runs/b/stand", "--steps", "500"], "runs/b/stand")
    job.status()      # {"state": "running", "step": 120, "total": 500, ...}
    job.stop()
"""

from __future__ import annotations

import atexit
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

LOG_NAME = "app_job.log"
_PROGRESS = re.compile(r"(\d+)/(\d+) \[")


class BehaveJob:
    """At most one ``genrl behave`` child process, started from the dashboard.

    Args:
        python: the interpreter running the child (default: this one).
    """

    def __init__(self, python: str = sys.executable):
        self.python = python
        self._proc: subprocess.Popen | None = None
        self._out: Path | None = None
        self._stopped = False
        self._lock = threading.Lock()
        atexit.register(self.stop)

    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, behave_args: list[str], out: str | os.PathLike) -> str:
        """Start ``genrl behave BEHAVE_ARGS`` in the background, logging to ``OUT/app_job.log``.

        Args:
            behave_args: the arguments after ``genrl behave`` (they must include ``--out OUT``).
            out: the run folder (for the log and the message).

        Returns:
            A one-line message ("started" or "resuming from update N").

        Raises:
            ValueError: a job is already running.
        """
        from genrl.app.dashboard_runs import _steps_done

        with self._lock:
            if self.running():
                raise ValueError(f"a behavior is already training ({self._out}); wait for it or stop it first "
                                 "(one job at a time)")
            out = Path(out)
            out.mkdir(parents=True, exist_ok=True)
            done = _steps_done(out)
            env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
            log = open(out / LOG_NAME, "ab")
            try:
                self._proc = subprocess.Popen([self.python, "-m", "genrl.app.cli", "behave", *behave_args],
                                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
            finally:
                log.close()
            self._out, self._stopped = out, False
        return f"resuming {out} from update {done}" if done else f"started training {out}"

    def stop(self) -> str:
        """Stop the running job (its last checkpoint is kept: starting it again resumes). Returns a message."""
        with self._lock:
            if not self.running():
                return "no job is running"
            self._stopped = True
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return f"stopped {self._out}; start it again to resume from its last checkpoint"

    def status(self) -> dict:
        """The job's state.

        Returns:
            ``{"state": "idle" | "running" | "done" | "failed" | "stopped", "out", "step", "total", "rc",
            "tail" (the last lines of its log)}``; ``step``/``total`` come from the progress bar (None before it
            shows).
        """
        if self._proc is None:
            return {"state": "idle", "out": None, "step": None, "total": None, "rc": None, "tail": ""}
        rc = self._proc.poll()
        try:
            text = (self._out / LOG_NAME).read_bytes()[-20000:].decode("utf-8", "replace")
        except OSError:
            text = ""
        hits = _PROGRESS.findall(text)
        step, total = (int(hits[-1][0]), int(hits[-1][1])) if hits else (None, None)
        lines = [ln.strip() for ln in re.split(r"[\r\n]+", text) if ln.strip()]
        state = "running" if rc is None else "stopped" if self._stopped else "done" if rc == 0 else "failed"
        return {"state": state, "out": str(self._out), "step": step, "total": total, "rc": rc,
                "tail": "\n".join(lines[-6:])}

    def status_markdown(self) -> str:
        """:meth:`status` as a short Markdown paragraph for the page."""
        s = self.status()
        if s["state"] == "idle":
            return "No training job started from this page yet."
        progress = ""
        if s["total"]:
            frac = s["step"] / s["total"]
            bar = "█" * round(20 * frac) + "░" * (20 - round(20 * frac))
            progress = f" `{bar}` {s['step']}/{s['total']} updates ({100 * frac:.0f} %)"
        head = {"running": "Training", "done": "Finished", "failed": f"Failed (exit code {s['rc']})",
                "stopped": "Stopped"}[s["state"]]
        tail = s["tail"] if s["state"] in ("failed", "done") else ""
        out = f"**{head}** `{s['out']}`{progress}"
        if tail:
            out += "\n\n```\n" + tail[-1500:] + "\n```"
        return out


__all__ = ["BehaveJob", "LOG_NAME"]
