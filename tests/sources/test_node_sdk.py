"""@segment/analytics-node from npm, pointed at a real sandbox server, reaches a
real receiver through a source. Skipped only where node is missing, and never
on CI (the CI variable set): there a missing node fails the test."""

import json
import os
import shutil
import subprocess
import uuid

import pytest

from tests.sources.conftest import SDK_WRITE_KEY, ingested, received_by_user, wait_for

pytestmark = pytest.mark.slow

ANALYTICS_NODE = "@segment/analytics-node@3.1.0"
SCRIPT = """
const { Analytics } = require("@segment/analytics-node");
const analytics = new Analytics({
  writeKey: process.env.WRITE_KEY,
  host: process.env.HOST,
  flushAt: 20,
  flushInterval: 200,
  maxRetries: 0,
});
const failures = [];
analytics.on("error", (error) => failures.push(String(error && error.reason || error)));
const userId = process.env.USER_ID;
analytics.identify({ userId, traits: { email: "node@example.com" } });
analytics.track({ userId, event: "Node Track", properties: { plan: "pro" } });
analytics.page({ userId, name: "Pricing", properties: { path: "/pricing" } });
analytics.screen({ userId, name: "Home" });
analytics.group({ userId, groupId: "acme", traits: { name: "Acme" } });
analytics.alias({ userId, previousId: userId + "-old" });
analytics.closeAndFlush({ timeout: 20000 }).then(() => {
  if (failures.length) {
    console.error(failures.join("\\n"));
    process.exit(1);
  }
});
"""


@pytest.fixture(scope="session")
def analytics_node(tmp_path_factory) -> str:
    """A directory with the library installed from npm (a few seconds)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed on CI for the analytics-node test")
        pytest.skip("node is not installed")
    directory = tmp_path_factory.mktemp("analytics-node")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", ANALYTICS_NODE],
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (directory / "send.js").write_text(SCRIPT)
    return str(directory)


def test_analytics_node_calls_reach_the_receiver_enriched(
    live, live_receiver, analytics_node
):
    user = f"node-{uuid.uuid4()}"
    sent = subprocess.run(
        ["node", "send.js"],
        cwd=analytics_node,
        env={
            **os.environ,
            "WRITE_KEY": SDK_WRITE_KEY,
            "HOST": live.url,
            "USER_ID": user,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    assert wait_for(lambda: len(received_by_user(live_receiver, user)) == 6)
    events = [r.json for r in received_by_user(live_receiver, user)]
    assert sorted(e["type"] for e in events) == sorted(
        ["identify", "track", "page", "screen", "group", "alias"]
    )
    for event in events:
        assert event["messageId"].startswith("node-next-")
        assert event["context"]["library"]["name"] == "@segment/analytics-node"
        assert "writeKey" not in event
        assert event["receivedAt"]
        assert event["originalTimestamp"]
        assert event["channel"] == "server"
    rows = ingested(live, "e.user_id = ?", user)
    assert [status for status, _, _ in rows] == ["accepted"] * 6
    assert {json.dumps(payload["messageId"]) for _, _, payload in rows} == {
        json.dumps(e["messageId"]) for e in events
    }
