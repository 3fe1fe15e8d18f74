"""Record what Segment's server libraries really send, as one JSON file per event.

Not run by the test suite. It installs the libraries into a scratch directory
(a virtualenv for analytics-python, npm for the two Node libraries), points each
at recorder.py, makes the calls in scenario.json and splits every batch into
events, the batch's context and integrations merged into each item and its
sentAt applied to items without one, as Segment's Tracking API does.

    python tests/spec/sdk_payloads/record/record.py --workdir /tmp/sdk-record

The near-32 KB event is sized per library: analytics-python's at the largest
its own 32 KiB guard lets through (measured as it measures, json.dumps with
its default separators); the Node libraries' at scenario.json's bigTarget
bytes of compact JSON, as they put it in the batch.
"""

import argparse
import base64
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent
CALIBRATION_PADDING = 20_000
PYTHON_GUARD_BYTES = 32 << 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install(workdir: Path) -> dict[str, str]:
    """Install the three libraries; return {corpus folder: driver command prefix}."""
    workdir.mkdir(parents=True, exist_ok=True)
    venv = workdir / "venv"
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "segment-analytics-python"], check=True
    )
    python_version = subprocess.run(
        [
            python,
            "-c",
            "from importlib.metadata import version as v;"
            "print(v('segment-analytics-python'))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not (workdir / "package.json").exists():
        (workdir / "package.json").write_text('{"private": true}\n')
    subprocess.run(
        ["npm", "install", "--silent", "@segment/analytics-node", "analytics-node"],
        cwd=workdir,
        check=True,
    )
    for script in ("node_next_calls.js", "node_classic_calls.js", "scenario.json"):
        (workdir / script).write_text((HERE / script).read_text())

    def npm_version(name: str) -> str:
        package = workdir / "node_modules" / name / "package.json"
        return json.loads(package.read_text())["version"]

    return {
        f"analytics-python-{python_version}": [
            str(python),
            str(HERE / "python_calls.py"),
        ],
        f"analytics-node-next-{npm_version('@segment/analytics-node')}": [
            "node",
            str(workdir / "node_next_calls.js"),
        ],
        f"analytics-node-classic-{npm_version('analytics-node')}": [
            "node",
            str(workdir / "node_classic_calls.js"),
        ],
    }


def run(command: list[str], host: str, padding: int, log: Path) -> list[dict]:
    """Run one driver against the recorder; return the request bodies it sent."""
    log.write_text("")
    subprocess.run([*command, host, str(padding)], check=True, timeout=120)
    time.sleep(0.5)
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    return [json.loads(base64.b64decode(r["body_base64"])) for r in requests]


def events_of(bodies: list[dict]) -> list[dict]:
    """Each batch item as Segment's API hands it on: batch-level context and
    integrations merged in (the item's own keys win), the batch's sentAt applied."""
    events = []
    for body in bodies:
        for item in body["batch"]:
            event = dict(item)
            for name in ("context", "integrations"):
                if isinstance(body.get(name), dict):
                    event[name] = {**body[name], **(item.get(name) or {})}
            if "sentAt" in body and item.get("sentAt") is None:
                event["sentAt"] = body["sentAt"]
            events.append(event)
    return events


def compact_size(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def big_padding(folder: str, command: list[str], host: str, log: Path) -> int:
    """The padding that puts the big event where this library's limit is."""
    target = json.loads((HERE / "scenario.json").read_text())["bigTarget"]
    name = json.loads((HERE / "scenario.json").read_text())["bigEventName"]
    items = [
        item
        for body in run(command, host, CALIBRATION_PADDING, log)
        for item in body["batch"]
    ]
    [big] = [item for item in items if item.get("event") == name]
    if folder.startswith("analytics-python"):
        # As client._enqueue measures: json.dumps with its default separators.
        return CALIBRATION_PADDING + PYTHON_GUARD_BYTES - len(json.dumps(big).encode())
    return CALIBRATION_PADDING + target - compact_size(big)


def file_name(index: int, event: dict) -> str:
    label = event["type"]
    if event.get("event"):
        label += "-" + re.sub(r"[^a-z0-9]+", "-", event["event"].lower()).strip("-")
    return f"{index:02d}-{label}.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    drivers = install(args.workdir)
    port = free_port()
    log = args.workdir / "requests.jsonl"
    log.write_text("")
    recorder = subprocess.Popen(
        [sys.executable, str(HERE / "recorder.py"), str(log), str(port)]
    )
    host = f"http://127.0.0.1:{port}"
    time.sleep(0.5)
    try:
        for folder, command in drivers.items():
            padding = big_padding(folder, command, host, log)
            events = events_of(run(command, host, padding, log))
            out = CORPUS / folder
            out.mkdir(exist_ok=True)
            for stale in out.glob("*.json"):
                stale.unlink()
            for index, event in enumerate(events, start=1):
                text = json.dumps(event, indent=2, ensure_ascii=False) + "\n"
                (out / file_name(index, event)).write_text(text)
            sizes = [compact_size(e) for e in events]
            print(f"{folder}: {len(events)} events, largest {max(sizes):,} bytes")
    finally:
        recorder.terminate()
        recorder.wait()


if __name__ == "__main__":
    main()
