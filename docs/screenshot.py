"""Screenshots TensorBoard's HParams dashboard on the example sweeps.

    python docs/screenshot.py              # writes docs/hparams-dashboard.png
    python docs/screenshot.py --pruned     # writes docs/hparams-pruned.png
    python docs/screenshot.py --parallel   # writes docs/hparams-parallel.png
    python docs/screenshot.py --report     # writes docs/report.png (the HTML report)

Runs an example sweep into a fresh logdir, starts a real `tensorboard` on
127.0.0.1, opens its HParams tab in headless Chromium and takes a screenshot,
then stops both. The first is the Keras sweep's table; the second is the
pruned Keras sweep's, with only the sessions whose status is Failure ticked
under Status: its pruned trials; the third is the Keras sweep's folder
opened alone, in the parallel-coordinates view, a line per trial. Needs the
example's requirements and
Debian's Chromium:

    apt-get install chromium

Chromium is driven over its DevTools protocol on a pipe
(`--remote-debugging-pipe`), so ticking a box needs no package beyond the
standard library.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_hparams.logdir import test_path
from pytest_hparams.records import SweepDefinition

HERE = Path(__file__).parent
ROOT = HERE.parent
WIDTH, HEIGHT = 1600, 1000
REPORT_HEIGHT = 2400  # the report's screenshot: its table and first figures
REPORT_SHOT = HERE / "report.png"


@dataclass(frozen=True)
class Shot:
    test_file: str  # in example_project/
    output: Path
    # Untick Success under Status: the table keeps the sessions that ended
    # as Failure, which in a sweep that passes are its pruned trials.
    failures_only: bool = False
    # Open the sweep's own folder, in the parallel-coordinates view.
    parallel: bool = False


SHOTS = {
    "dashboard": Shot("test_keras_sweep.py", HERE / "hparams-dashboard.png"),
    "pruned": Shot("test_keras_pruned.py", HERE / "hparams-pruned.png", failures_only=True),
    "parallel": Shot("test_keras_sweep.py", HERE / "hparams-parallel.png", parallel=True),
}

# Opens the parallel-coordinates view and resolves to the number of lines it
# draws (the SVG paths of its foreground group), once it draws `expected`.
PARALLEL = """
(async (expected) => {
  const everything = (root, out = []) => {
    for (const el of root.querySelectorAll("*")) {
      out.push(el);
      if (el.shadowRoot) everything(el.shadowRoot, out);
    }
    return out;
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let tab = null;
  for (let i = 0; i < 240 && !tab; i++, await sleep(250)) {
    tab = everything(document).find(
      (e) => e.tagName === "PAPER-TAB" && e.textContent.trim() === "PARALLEL COORDINATES VIEW");
  }
  if (!tab) return "no parallel-coordinates tab";
  tab.click();
  let lines = 0;
  for (let i = 0; i < 240; i++, await sleep(250)) {
    const groups = everything(document).filter(
      (e) => e.tagName === "g" && e.classList.contains("foreground"));
    lines = groups.reduce((n, g) => n + g.querySelectorAll("path").length, 0);
    if (lines >= expected) return lines;
  }
  return lines;
})
"""

# Finds a filter's checkbox by its label, through the dashboard's shadow
# roots (Polymer), unticks it, and waits until the table shows the number of
# session groups left; resolves to that count, or to a reason it could not.
UNTICK = """
(async (labels, expected) => {
  const everything = (root, out = []) => {
    for (const el of root.querySelectorAll("*")) {
      out.push(el);
      if (el.shadowRoot) everything(el.shadowRoot, out);
    }
    return out;
  };
  const matching = () => {
    for (const el of everything(document)) {
      const m = /Number of matching session groups: (\\d+)/.exec(el.textContent || "");
      if (m) return Number(m[1]);
    }
    return null;
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  for (const label of labels) {
    let box = null;
    for (let i = 0; i < 240 && !box; i++, await sleep(250)) {
      box = everything(document).find(
        (e) => e.tagName === "PAPER-CHECKBOX" && e.textContent.trim() === label);
    }
    if (!box) return `no checkbox labelled ${label}`;
    if (box.checked) box.click();
  }
  for (let i = 0; i < 240; i++, await sleep(250)) {
    if (matching() === expected) return expected;
  }
  return `the table shows ${matching()} session groups, not ${expected}`;
})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_sessions(port: int, expected: int, timeout: float = 120.0) -> None:
    body = json.dumps(
        {
            "experimentName": "",
            "startIndex": 0,
            "sliceSize": 1000,
            "allowedStatuses": [
                "STATUS_UNKNOWN",
                "STATUS_SUCCESS",
                "STATUS_FAILURE",
                "STATUS_RUNNING",
            ],
        }
    ).encode()
    url = f"http://127.0.0.1:{port}/data/plugin/hparams/session_groups"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                url, data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                groups = json.load(response).get("sessionGroups", [])
            if len(groups) >= expected and all(g.get("metricValues") for g in groups):
                return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"TensorBoard did not serve {expected} sessions within {timeout:.0f} s")


class DevTools:
    """Headless Chromium, driven over the DevTools protocol on a pipe: it
    reads commands on its fd 3 and writes replies on its fd 4, each message
    JSON ended by a NUL byte."""

    def __init__(self, chromium: str, profile: Path) -> None:
        commands, self._commands = os.pipe()
        self._replies, replies = os.pipe()

        def as_fds_3_and_4() -> None:
            # In the child, before Chromium runs: the pipes may already sit at
            # 3 or 4, so each goes above 10 first (closed on exec), then down
            # to its place, inheritable; every other fd of ours closes on exec.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands, replies)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            preexec_fn=as_fds_3_and_4,
            close_fds=False,  # it would close 3 and 4 after preexec_fn
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands)
        os.close(replies)
        self._pending = b""
        self._id = 0
        self._session: str | None = None
        # The events Chromium sent, in order (those of a domain once enabled:
        # Network's requests, Runtime's console calls and exceptions).
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Sends a command (to the open page, once there is one) and returns
        its result; events on the way are kept in `events`."""
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self._session is not None:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._pending:
                chunk = os.read(self._replies, 1 << 16)
                if not chunk:
                    raise RuntimeError(f"Chromium exited during {method}")
                self._pending += chunk
            line, self._pending = self._pending.split(b"\0", 1)
            reply = json.loads(line)
            if "method" in reply and "id" not in reply:
                self.events.append(reply)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply["result"])

    def open(self, url: str, offline: bool = False) -> None:
        """Opens `url` in a new page; `offline`: with the network off, and the
        page's requests, console and exceptions recorded in `events`."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        if offline:
            for domain in ("Network", "Runtime", "Log"):
                self.send(f"{domain}.enable")
            self.send(
                "Network.emulateNetworkConditions",
                offline=True,
                latency=0,
                downloadThroughput=-1,
                uploadThroughput=-1,
            )
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.send("Page.navigate", url=url)

    def run(self, function: str, *args: Any) -> Any:
        """Calls a JavaScript function in the page and returns what it resolves to."""
        expression = f"({function})({', '.join(json.dumps(a) for a in args)})"
        reply = self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(reply["exceptionDetails"].get("text", "a JavaScript error"))
        return reply["result"].get("value")

    def screenshot(self, path: Path) -> None:
        png = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(png))

    def close(self) -> None:
        os.close(self._commands)  # Chromium exits when its pipe closes
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._replies)


@contextlib.contextmanager
def opened(chromium: str, logdir: Path, expected: int) -> Iterator[DevTools]:
    """A real `tensorboard` on 127.0.0.1 serving `logdir`, once it serves
    `expected` sessions, and headless Chromium on its HParams tab; both are
    stopped on the way out."""
    port = free_port()
    tensorboard = subprocess.Popen(
        [
            *(sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    browser: DevTools | None = None
    profile = Path(tempfile.mkdtemp(prefix="hparams-chromium-"))
    try:
        wait_for_sessions(port, expected=expected)
        browser = DevTools(chromium, profile)
        browser.open(f"http://127.0.0.1:{port}/#hparams")
        yield browser
    finally:
        if browser is not None:
            browser.close()
        tensorboard.terminate()
        tensorboard.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def parallel_lines(chromium: str, logdir: Path, expected: int, output: Path | None) -> int:
    """Opens `logdir` in the HParams tab's parallel-coordinates view; returns
    the lines it draws, once `expected` (or what it drew by then), and
    screenshots it to `output`."""
    with opened(chromium, logdir, expected) as browser:
        lines = browser.run(PARALLEL, expected)
        if not isinstance(lines, int):
            raise RuntimeError(f"the dashboard did not settle: {lines}")
        if output is not None:
            time.sleep(2)  # the lines' colors settle after they are drawn
            browser.screenshot(output)
        return lines


# Waits for the page to load and its figures to draw; resolves to each
# figure's id, its traces as Plotly holds them, and the marks it drew (SVG
# paths and points, or the canvases of WebGL traces such as parcoords).
PLOTS = """
(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 240 && document.readyState !== "complete"; i++) await sleep(250);
  await sleep(1000);
  return [...document.querySelectorAll('[id^="figure-"]')].map((el) => ({
    id: el.id,
    plotly: el.classList.contains("js-plotly-plot"),
    traces: (el._fullData || []).length,
    points: (el._fullData || []).reduce(
      (n, t) => n + ((t.x && t.x.length) || (t.dimensions && t.dimensions.length) || 0), 0),
    marks: el.querySelectorAll(
      "g.trace path, g.trace .point, path.js-line, g.parcoords canvas, .gl-canvas").length,
  }));
})
"""


@dataclass
class Page:
    """What headless Chromium found in a report it opened offline."""

    plots: list[dict[str, Any]]
    errors: list[str]  # console errors and uncaught exceptions
    requests: list[str]  # every URL the page asked for but its own file


def open_report(chromium: str, report: Path, output: Path | None = None) -> Page:
    """Opens an HTML report from file:// with the network off; returns its
    figures, its console errors and the requests it made, and screenshots
    it to `output` (the whole page)."""
    profile = Path(tempfile.mkdtemp(prefix="hparams-chromium-"))
    browser = DevTools(chromium, profile)
    url = report.resolve().as_uri()
    try:
        browser.open(url, offline=True)
        plots = browser.run(PLOTS)
        if output is not None:
            browser.send(
                "Emulation.setDeviceMetricsOverride",
                width=WIDTH,
                height=REPORT_HEIGHT,
                deviceScaleFactor=1,
                mobile=False,
            )
            time.sleep(2)  # the responsive figures redraw at the new size
            browser.screenshot(output)
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    errors, requests = [], []
    for event in browser.events:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.exceptionThrown":
            errors.append(str(params["exceptionDetails"].get("text")))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            errors.append(
                " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            )
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            errors.append(str(params["entry"].get("text")))
        elif method == "Network.requestWillBeSent":
            requested = str(params["request"]["url"])
            if requested != url and not requested.startswith("data:"):
                requests.append(requested)
    return Page(plots, errors, requests)


def report_shot(chromium: str) -> int:
    """Runs the example's Keras sweeps into a fresh logdir twice, the second
    against a baseline, writes their HTML report and screenshots it."""
    work = Path(tempfile.mkdtemp(prefix="hparams-screenshot-"))
    report = work / "report.html"
    try:
        subprocess.run(
            [
                *(sys.executable, "-m", "pytest", "-q", "-p", "no:randomly"),
                str(ROOT / "example_project" / "test_keras_pruned.py"),
                f"--hparams-logdir={work / 'logs'}",
                f"--hparams-html={report}",
            ],
            check=True,
            cwd=ROOT / "example_project",
        )
        page = open_report(chromium, report, REPORT_SHOT)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if page.errors or page.requests or not all(p["traces"] for p in page.plots):
        raise RuntimeError(f"the report did not draw cleanly: {page}")
    print(f"wrote {REPORT_SHOT.relative_to(ROOT)} ({len(page.plots)} figures)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--pruned", action="store_true", help="the pruned Keras sweep (docs/hparams-pruned.png)"
    )
    which.add_argument(
        "--report",
        action="store_true",
        help="the pruned Keras sweep's HTML report (docs/report.png)",
    )
    which.add_argument(
        "--parallel",
        action="store_true",
        help="the Keras sweep's parallel coordinates (docs/hparams-parallel.png)",
    )
    args = parser.parse_args()
    shot = SHOTS["pruned" if args.pruned else "parallel" if args.parallel else "dashboard"]
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print(
            "error: Chromium not found; install it with: apt-get install chromium", file=sys.stderr
        )
        return 2
    if args.report:
        return report_shot(chromium)
    work = Path(tempfile.mkdtemp(prefix="hparams-screenshot-"))
    logdir, report = work / "logs", work / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            # The pruner decides by the trials that ran before: keep the
            # declared order, should pytest-randomly be installed.
            "-p",
            "no:randomly",
            str(ROOT / "example_project" / shot.test_file),
            f"--hparams-logdir={logdir}",
            f"--hparams-json={report}",
        ],
        check=True,
        cwd=ROOT / "example_project",
    )
    (sweep,) = json.loads(report.read_text())["sweeps"]
    trials = sweep["trials"]
    if shot.parallel:
        folder = logdir / test_path(SweepDefinition.from_dict(sweep["definition"]).folder)
        lines = parallel_lines(chromium, folder, len(trials), shot.output)
        shutil.rmtree(work, ignore_errors=True)
        if lines != len(trials):
            raise RuntimeError(f"{lines} lines for {len(trials)} trials")
        print(f"wrote {shot.output.relative_to(ROOT)}")
        return 0
    kept = [t for t in trials if t["outcome"] != "passed"] if shot.failures_only else trials
    try:
        with opened(chromium, logdir, len(trials)) as browser:
            shown = browser.run(UNTICK, ["Success"] if shot.failures_only else [], len(kept))
            if shown != len(kept):
                raise RuntimeError(f"the dashboard did not settle: {shown}")
            time.sleep(2)  # the table's rows render after its count
            browser.screenshot(shot.output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {shot.output.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
