"""Drive segment-analytics-python against the recorder: python_calls.py HOST PADDING."""

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from segment.analytics import Client

host, padding = sys.argv[1], int(sys.argv[2])
s = json.loads((Path(__file__).parent / "scenario.json").read_text())
client = Client(s["writeKey"], host=host, upload_size=100, max_retries=0)
traits = dict(s["traits"], createdAt=datetime(2023, 11, 2, 8, 15, tzinfo=UTC))

client.identify(s["userId"], traits)
client.track(s["userId"], "Order Completed", s["order"])
# An anonymous server event: user_id stays None and goes out as null.
client.track(
    None,
    "Product Viewed",
    {"product_id": "507f1f77bcf86cd799439011"},
    anonymous_id=s["anonymousId"],
)
p = s["page"]
client.page(s["userId"], p["category"], p["name"], p["properties"])
sc = s["screen"]
client.screen(s["userId"], sc["category"], sc["name"], sc["properties"])
client.group(s["userId"], s["groupId"], s["groupTraits"])
client.alias(s["previousId"], s["userId"])
client.track(
    s["userId"],
    "Trial Started",
    {"trial_plan_name": "premium"},
    timestamp=datetime.fromisoformat(s["historicalTimestamp"].replace("Z", "+00:00")),
)
if padding:
    # An export's first rows as CSV, cut to the length asked for.
    rows = ";".join(f"{i},customer_{i},{i * 7 % 1000}.00" for i in range(1, 5000))
    client.track(
        s["userId"],
        s["bigEventName"],
        {"report_id": "rpt_7731", "format": "csv", "preview": rows[:padding]},
    )
client.flush()
client.join()
