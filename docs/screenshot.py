"""Screenshots TensorBoard's HParams dashboard on the example sweep.

    python docs/screenshot.py            # writes docs/hparams-dashboard.png

Runs the example project into a fresh logdir, starts a real `tensorboard` on
127.0.0.1, takes a screenshot of the HParams tab with headless Chromium, and
stops both. Needs the example's requirements and Debian's Chromium:

    apt-get install chromium
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
OUTPUT = HERE / "hparams-dashboard.png"


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


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print(
            "error: Chromium not found; install it with: apt-get install chromium", file=sys.stderr
        )
        return 2
    work = Path(tempfile.mkdtemp(prefix="hparams-screenshot-"))
    logdir = work / "logs"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            str(ROOT / "example_project" / "test_keras_sweep.py"),
            f"--hparams-logdir={logdir}",
        ],
        check=True,
        cwd=ROOT / "example_project",
    )
    port = free_port()
    tensorboard = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            str(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_sessions(port, expected=12)
        subprocess.run(
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
                f"--user-data-dir={work / 'chromium'}",
                "--hide-scrollbars",
                "--window-size=1600,1000",
                "--virtual-time-budget=20000",
                f"--screenshot={OUTPUT}",
                f"http://127.0.0.1:{port}/#hparams",
            ],
            check=True,
            timeout=180,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        tensorboard.terminate()
        tensorboard.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
