"""Fill a data directory's SQLite database with N stored deliveries, fast.

The database is migrated and the demo seeded as `make run` does, then filled with
raw `executemany` (the tables' own indexes are dropped while filling and built
again after, as a bulk load does): a few subscriptions, one of them busy, each
with a few target rows (edits over time) reused by its deliveries; states,
outcomes, statuses, event types and names and user ids varied; created_at spread
over 60 days and growing with the id; attempts for every delivery that was sent.
Rows left open (pending, retrying) are due a year from now, so an engine started
on the database does not send them.

The filled file is kept under /tmp, keyed by N and the migrations the schema is
made of, and copied from there when asked again.

Usage: .venv/bin/python benchmarks/fixtures.py DATA_DIR [--deliveries N]
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "sandbox.sqlite3"
CACHE_DIR = Path(tempfile.gettempdir())
# Bump when the generated content changes, so cached files are made again.
GENERATOR_VERSION = 1
DEFAULT_DELIVERIES = 1_000_000
CHUNK = 50_000
SPREAD = timedelta(days=60)
# Where seed_demo points the demo subscription; live.py points it at its server.
PLACEHOLDER_BASE_URL = "http://127.0.0.1:8000"
DEMO_NAME = "Demo subscription"
BUSY_NAME = "Acme warehouse"
RETIRED_NAME = "Retired hook"
FILLED_TABLES = ("delivery_delivery", "delivery_attempt")


@dataclass(frozen=True)
class Subscription:
    name: str
    share: float
    endpoint_url: str
    versions: int


# The demo comes from seed_demo; the others are made here. "Retired hook" is
# deleted at the end: its deliveries keep their target rows, with no subscription.
SUBSCRIPTIONS = (
    Subscription(BUSY_NAME, 0.75, "https://hooks.acme.example/segment", 4),
    Subscription(DEMO_NAME, 0.08, "", 1),
    Subscription("Beta analytics", 0.08, "https://beta.example/ingest", 3),
    Subscription("Gamma CRM", 0.05, "https://crm.gamma.example/webhook", 2),
    Subscription(RETIRED_NAME, 0.03, "https://old.example/hook", 2),
)
AD_HOC_SHARE = 0.01  # sendevent from the command line: no subscription

EVENT_TYPES = (
    ("track", 0.62),
    ("identify", 0.14),
    ("page", 0.12),
    ("screen", 0.05),
    ("group", 0.04),
    ("alias", 0.02),
    ("delete", 0.01),
)
TRACK_NAMES = (
    "Order Completed",
    "Product Viewed",
    "Product Added",
    "Cart Viewed",
    "Checkout Started",
    "Payment Info Entered",
    "Products Searched",
    "Product List Viewed",
    "Signed Up",
    "Signed In",
    "Coupon Applied",
    "Product Removed",
    "Order Refunded",
    "Subscription Started",
    "Trial Ended",
    "Video Playback Started",
    "Email Opened",
    "Invite Sent",
    "Feature Used",
    "Account Deleted",
)
USERS = 50_000
ANONYMOUS = 120_000

# (state, outcome, statuses, attempts, share); a status None is a timeout.
ENDINGS = (
    ("delivered", "green", (200,), 1, 0.86),
    ("delivered", "green", (200,), 2, 0.025),
    ("delivered", "green", (202,), 3, 0.005),
    ("unsupported", "yellow", (501,), 1, 0.03),
    ("discarded", "red", (400, 401, 404, 413), 1, 0.03),
    ("failed", "red", (500, 503, None), 10, 0.01),
    ("deduplicated", "", (), 0, 0.03),
    ("retrying", "red", (503, None), 2, 0.0005),
    ("pending", "", (), 0, 0.0005),
)
REASONS = {
    200: "processed (200)",
    202: "processed (202)",
    400: "the endpoint rejected the event (400)",
    401: "the endpoint rejected the API key (401)",
    404: "the endpoint was not found (404)",
    413: "the event is too large for the endpoint (413)",
    500: "the endpoint failed (500)",
    501: "unsupported event type (501)",
    503: "the endpoint is unavailable (503)",
    None: "timed out after 5 s",
}

PAYLOAD = (
    '{{"type":"{type}","event":"{event}","userId":"{user}","anonymousId":"{anon}",'
    '"messageId":"{message}","timestamp":"{at}","sentAt":"{at}",'
    '"properties":{{"orderId":"o-{n}","revenue":{revenue},"currency":"USD",'
    '"products":[{{"sku":"sku-{sku}","quantity":1}}]}},'
    '"context":{{"library":{{"name":"analytics.js","version":"5.2.0"}},'
    '"page":{{"path":"/checkout","url":"https://shop.example.com/checkout"}},'
    '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36",'
    '"ip":"203.0.113.{ip}"}},"integrations":{{}}}}'
)
RESPONSE_HEADERS = json.dumps(
    [["Content-Type", "application/json"], ["Server", "nginx"]]
)


def migrations_key() -> str:
    """The schema the migrations make, and the generator's version."""
    names = sorted(
        f"{path.parent.parent.name}.{path.stem}"
        for path in ROOT.glob("sandbox/*/migrations/0*.py")
    )
    digest = hashlib.sha256(
        "\n".join([f"v{GENERATOR_VERSION}", *names]).encode()
    ).hexdigest()[:10]
    latest = max(name for name in names if name.startswith("delivery."))
    return f"{latest.split('.', 1)[1]}-{digest}"


def cached_path(n: int) -> Path:
    return CACHE_DIR / f"sandbox-fixture-{n}-{migrations_key()}.sqlite3"


def fill(data_dir: Path | str, n: int = DEFAULT_DELIVERIES) -> Path:
    """The data directory's database, filled with n deliveries; its path."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    source = cached_path(n)
    if not source.exists():
        build(source, n)
    target = data_dir / DATABASE
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return target


def build(path: Path, n: int) -> None:
    """Make the filled file at `path` (made aside, then renamed into place)."""
    with tempfile.TemporaryDirectory(prefix="sandbox-fixture-") as work:
        env = {
            **os.environ,
            "SANDBOX_DATA_DIR": work,
            "SANDBOX_BASE_URL": PLACEHOLDER_BASE_URL,
        }
        env.pop("DATABASE_URL", None)
        env.pop("SANDBOX_DB_PATH", None)
        for command in (["migrate", "-v0"], ["seed_demo", "-v0"]):
            subprocess.run(
                [sys.executable, str(ROOT / "manage.py"), *command],
                env=env,
                cwd=ROOT,
                check=True,
            )
        database = Path(work) / DATABASE
        _fill_database(database, n)
        partial = path.with_suffix(".partial")
        shutil.move(database, partial)
        partial.rename(path)


def _fill_database(database: Path, n: int) -> None:
    db = sqlite3.connect(database, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-524288")  # 512 MB
        db.execute("PRAGMA temp_store=MEMORY")
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index'"
            f" AND sql IS NOT NULL AND tbl_name IN {FILLED_TABLES}"
        ).fetchall()
        for name, _ in indexes:
            db.execute(f'DROP INDEX "{name}"')
        now = datetime.now(UTC).replace(tzinfo=None)
        targets = _subscriptions_and_targets(db, now)
        # Rows are made in a second process while this one writes them.
        processes = multiprocessing.get_context("fork")
        chunks = processes.Queue(maxsize=3)
        producer = processes.Process(
            target=_produce, args=(chunks, targets, n, now), daemon=True
        )
        producer.start()
        while (chunk := chunks.get()) is not None:
            if chunk == PRODUCER_FAILED:
                raise SystemExit(PRODUCER_FAILED)
            deliveries, attempts = chunk
            db.execute("BEGIN")
            _insert(db, "delivery_delivery", *deliveries)
            _insert(db, "delivery_attempt", *attempts)
            db.execute("COMMIT")
        producer.join()
        for _, sql in indexes:
            db.execute(sql)
        # As subscription_delete leaves it: its history and target rows are kept.
        db.execute(
            "DELETE FROM subscriptions_subscription WHERE name = ?", [RETIRED_NAME]
        )
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()


Rows = tuple[list[str], list[tuple]]  # column names, and a tuple per row
PRODUCER_FAILED = "the row generator failed (its traceback is above)"


def _produce(chunks, targets, n: int, now: datetime) -> None:
    try:
        for deliveries, attempts in Generator(targets=targets, n=n, now=now).chunks():
            chunks.put((_as_tuples(deliveries), _as_tuples(attempts)))
    except BaseException:
        chunks.put(PRODUCER_FAILED)
        raise
    chunks.put(None)


def _as_tuples(rows: list[dict]) -> Rows:
    return (list(rows[0]) if rows else [], [tuple(row.values()) for row in rows])


def _insert(db: sqlite3.Connection, table: str, columns: list, rows: list) -> None:
    if not rows:
        return
    _check_columns(db, table, columns)
    names = ", ".join(f'"{column}"' for column in columns)
    marks = ", ".join("?" for _ in columns)
    db.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', rows)


_checked: set[str] = set()


def _check_columns(db: sqlite3.Connection, table: str, columns: list[str]) -> None:
    """A column added by a newer migration, that needs a value, stops the fill."""
    if table in _checked:
        return
    missing = [
        name
        for _, name, _, not_null, default, primary in db.execute(
            f'PRAGMA table_info("{table}")'
        )
        if not_null and default is None and not primary and name not in columns
    ]
    if missing:
        raise SystemExit(
            f"benchmarks/fixtures.py does not fill {table}.{', '.join(missing)}:"
            " teach the generator the new column."
        )
    _checked.add(table)


def _stamp(moment: datetime) -> str:
    """A datetime as Django stores it in SQLite (UTC, no offset)."""
    return moment.isoformat(sep=" ", timespec="microseconds")


@dataclass(frozen=True)
class TargetRow:
    pk: int
    subscription_id: int | None
    endpoint_url: str
    headers: str
    # The target is used by deliveries made from this share of the 60 days on.
    since: float


# A function's columns, unused by webhooks: the defaults of
# sandbox.subscriptions.models (memory MB, batch size, batch window seconds).
_FUNCTION_DEFAULTS = (128, 20, 10.0)


def _subscriptions_and_targets(
    db: sqlite3.Connection, now: datetime
) -> list[tuple[float, list[TargetRow]]]:
    """(share, targets) for each subscription and for ad hoc sends."""
    stamp = _stamp(now - SPREAD)
    found = []
    for subscription in SUBSCRIPTIONS:
        row = db.execute(
            "SELECT id, endpoint_url, api_key FROM subscriptions_subscription"
            " WHERE name = ?",
            [subscription.name],
        ).fetchone()
        if row is None:
            cursor = db.execute(
                "INSERT INTO subscriptions_subscription (name, kind, endpoint_url,"
                " api_key, custom_settings, timeout_seconds, retry_policy,"
                " time_scale, dedupe_enabled, dedupe_window_hours, enabled,"
                " created_at, updated_at, memory_mb, batch_size,"
                " batch_window_seconds) VALUES (?, 'webhook', ?, ?, ?, 5.0,"
                " 'segment', 1.0, 1, 24.0, 1, ?, ?, ?, ?, ?)",
                [
                    subscription.name,
                    subscription.endpoint_url,
                    f"key-{subscription.name.split()[0].lower()}",
                    json.dumps({"region": "eu"}),
                    stamp,
                    stamp,
                    *_FUNCTION_DEFAULTS,
                ],
            )
            row = (cursor.lastrowid, subscription.endpoint_url, "key")
        pk, url, key = row
        # The retired subscription's rows point at no subscription, as after
        # subscription_delete.
        owner = None if subscription.name == RETIRED_NAME else pk
        targets = [
            _target_row(
                db,
                owner,
                subscription.name,
                url,
                f"{key}-{version}",
                version,
                subscription.versions,
                stamp,
            )
            for version in range(subscription.versions)
        ]
        found.append((subscription.share, targets))
    ad_hoc = [
        _target_row(
            db,
            None,
            "http://localhost:9000/hook",
            "http://localhost:9000/hook",
            "",
            0,
            1,
            stamp,
        )
    ]
    found.append((AD_HOC_SHARE, ad_hoc))
    return found


def _target_row(
    db: sqlite3.Connection,
    subscription_id: int | None,
    name: str,
    url: str,
    api_key: str,
    version: int,
    versions: int,
    stamp: str,
) -> TargetRow:
    settings = {"region": "eu", "version": version}
    key = hashlib.sha256(
        json.dumps([subscription_id, name, url, api_key, settings]).encode()
    ).hexdigest()
    cursor = db.execute(
        "INSERT INTO delivery_deliverytarget (kind, subscription_id, name,"
        " endpoint_url, api_key, custom_settings, timeout_seconds, retry_policy,"
        " time_scale, content_key, created_at, memory_mb, batch_size,"
        " batch_window_seconds) VALUES ('webhook', ?, ?, ?, ?, ?,"
        " 5.0, 'segment', 1.0, ?, ?, ?, ?, ?)",
        [
            subscription_id,
            name,
            url,
            api_key,
            json.dumps(settings),
            key,
            stamp,
            *_FUNCTION_DEFAULTS,
        ],
    )
    headers = json.dumps(
        [
            ["Content-Type", "application/json"],
            ["User-Agent", "Segment.io/1.0"],
            ["Authorization", "Basic " + hashlib.md5(api_key.encode()).hexdigest()],
            ["X-Segment-Settings", "eyJyZWdpb24iOiJldSIsInZlcnNpb24iOjF9"],
        ]
    )
    return TargetRow(
        cursor.lastrowid, subscription_id, url, headers, version / versions
    )


class Generator:
    """Deliveries and their attempts, chunk by chunk, reproducibly."""

    def __init__(self, *, targets, n: int, now: datetime):
        self.n = n
        self.start = now - SPREAD
        self.step = SPREAD / max(n, 1)
        self.random = random.Random(42)
        self.owners = [owner for _, owner in targets]
        self.owner_weights = [share for share, _ in targets]
        self.types = [name for name, _ in EVENT_TYPES]
        self.type_weights = [share for _, share in EVENT_TYPES]
        self.endings = ENDINGS
        self.ending_weights = [ending[-1] for ending in ENDINGS]
        self.far = _stamp(now + timedelta(days=365))
        self.previous_message = ""

    def chunks(self) -> Iterator[tuple[list[dict], list[dict]]]:
        attempt_id = 0
        for low in range(0, self.n, CHUNK):
            size = min(CHUNK, self.n - low)
            deliveries, attempts = [], []
            pick = self.random.choices
            owners = pick(self.owners, self.owner_weights, k=size)
            types = pick(self.types, self.type_weights, k=size)
            endings = pick(self.endings, self.ending_weights, k=size)
            for offset in range(size):
                pk = low + offset + 1
                row, made = self._delivery(
                    pk, owners[offset], types[offset], endings[offset], attempt_id
                )
                deliveries.append(row)
                attempts.extend(made)
                attempt_id += len(made)
            yield deliveries, attempts

    def _delivery(self, pk, owner, event_type, ending, attempt_id):
        rand = self.random.random
        position = (pk - 1) / self.n
        target = owner[0]
        for candidate in owner:
            if candidate.since <= position:
                target = candidate
        created = self.start + self.step * (pk - 1)
        created_at = _stamp(created)
        state, outcome, statuses, tries, _ = ending
        status = statuses[int(rand() * len(statuses))] if statuses else None
        latency = int(20 + rand() ** 4 * 900) if tries else None
        if status is None and tries:
            latency = None
        user = f"user-{int(rand() ** 2 * USERS)}" if rand() < 0.8 else ""
        anonymous = f"anon-{int(rand() * ANONYMOUS):06d}-{pk % 97:02d}"
        event = (
            TRACK_NAMES[int(rand() ** 2 * len(TRACK_NAMES))]
            if event_type == "track"
            else ""
        )
        if state == "deduplicated" and pk == 1:
            state = "pending"
        injected = state == "delivered" and rand() < 0.002 and pk > 1
        duplicate_of = pk - 1 if injected or state == "deduplicated" else None
        # A duplicate carries the messageId of the delivery it repeats.
        message = (
            self.previous_message
            if duplicate_of
            else f"ajs-next-{pk:08x}-{int(rand() * 1e9):09d}"
        )
        self.previous_message = message
        settled = created + timedelta(milliseconds=(latency or 5000) * max(tries, 1))
        open_row = state in ("pending", "retrying")
        payload = PAYLOAD.format(
            type=event_type,
            event=event,
            user=user,
            anon=anonymous,
            message=message,
            at=created.isoformat(timespec="milliseconds") + "Z",
            n=pk,
            revenue=pk % 500,
            sku=pk % 1000,
            ip=pk % 250,
        )
        row = {
            "id": pk,
            "door": "composer"
            if rand() < 0.9
            else ("resend" if rand() < 0.7 else "cli"),
            "injected_duplicate": int(injected),
            "message_id": message,
            "event_type": event_type,
            "event_name": event,
            "user_id": user,
            "anonymous_id": anonymous,
            "payload": payload,
            "spec_problems": "[]",
            "state": state,
            "outcome": outcome,
            "response_status": status if tries else None,
            "latency_ms": latency,
            "reason": REASONS[status] if tries else "",
            "attempt_count": tries,
            "next_attempt_at": self.far if open_row else None,
            "claimed_by": "",
            "claimed_until": None,
            "created_at": created_at,
            "updated_at": _stamp(settled),
            "subscription_id": target.subscription_id,
            "run_id": None,
            # As services.dedupe_key makes it (these messageIds fit in 64).
            "dedupe_key": (
                f"s{target.subscription_id}:{message}"
                if duplicate_of is None and target.subscription_id is not None
                else None
            ),
            "target_id": target.pk,
            "duplicate_of_id": duplicate_of,
            "resend_of_id": None,
        }
        attempts = []
        for number in range(1, tries + 1):
            # Earlier attempts of a retried delivery failed in turn.
            last = number == tries
            answer = status if last else (503, None, 500)[number % 3]
            took = latency if last else int(20 + rand() ** 4 * 900)
            if answer is None:
                took = None
            started = created + timedelta(seconds=30 * (2**number - 2))
            attempts.append(
                {
                    "id": attempt_id + number,
                    "delivery_id": pk,
                    "number": number,
                    "target_id": target.pk,
                    "due_at": _stamp(started),
                    "started_at": _stamp(started),
                    "request_method": "POST",
                    "request_url": target.endpoint_url,
                    "request_headers": target.headers,
                    "response_status": answer,
                    "response_headers": RESPONSE_HEADERS if answer else "[]",
                    "response_body": '{"ok":true}'
                    if answer in (200, 202)
                    else ('{"message":"try later"}' if answer else ""),
                    "response_truncated": 0,
                    "latency_ms": took,
                    "error_kind": "" if answer else "timeout",
                    "error_message": "" if answer else "timed out after 5 s",
                    "exchanges": "[]",
                    "invocation": "{}",
                    "outcome": "green"
                    if answer in (200, 202)
                    else ("yellow" if answer == 501 else "red"),
                    "reason": REASONS[answer],
                    "created_at": _stamp(started),
                }
            )
        return row, attempts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--deliveries", type=int, default=DEFAULT_DELIVERIES)
    args = parser.parse_args()
    cached = cached_path(args.deliveries).exists()
    started = time.perf_counter()
    path = fill(args.data_dir, args.deliveries)
    took = time.perf_counter() - started
    how = "copied from the cache" if cached else "generated"
    print(f"  {'deliveries':<44} {args.deliveries:,} ({how} in {took:.1f} s)")
    print(f"  {'database':<44} {path} ({path.stat().st_size / 2**20:,.0f} MB)")


if __name__ == "__main__":
    main()
