"""Upgrading a data directory made before targets were rows keeps every delivery's
target, attempt and settings (a real database migrated by manage.py)."""

import json
import sqlite3

import pytest

from tests.server import Server


def _insert(db: sqlite3.Connection, table: str, **values) -> int:
    """A row as the older version stored it; NOT NULL columns it left to Django
    get a neutral value."""
    for _, name, kind, not_null, default, primary in db.execute(
        f"PRAGMA table_info({table})"
    ):
        if name in values or primary or not not_null or default is not None:
            continue
        values[name] = "" if "char" in kind.lower() or kind == "text" else 0
    columns = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    cursor = db.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values())
    )
    return cursor.lastrowid


@pytest.mark.slow
def test_copied_targets_become_shared_rows(tmp_path):
    server = Server(tmp_path)
    server.manage("migrate", "-v0", "delivery", "0002")
    now = "2026-11-01 10:00:00"
    with sqlite3.connect(tmp_path / "sandbox.sqlite3") as db:
        subscription = _insert(
            db,
            "subscriptions_subscription",
            name="Partner",
            kind="webhook",
            endpoint_url="http://127.0.0.1:9/hook",
            api_key="old-key",
            custom_settings='{"region": "eu"}',
            timeout_seconds=5.0,
            time_scale=1.0,
            dedupe_window_hours=24.0,
            enabled=1,
            created_at=now,
            updated_at=now,
        )
        copied = {
            "subscription_id": subscription,
            "subscription_name": "Partner",
            "endpoint_url": "http://127.0.0.1:9/hook",
            "api_key": "old-key",
            "custom_settings": '{"region": "eu"}',
            "timeout_seconds": 5.0,
            "retry_policy": "segment",
            "time_scale": 1.0,
        }
        ad_hoc = {
            **copied,
            "subscription_id": None,
            "subscription_name": "ad hoc: http://127.0.0.1:9/x",
            "endpoint_url": "http://127.0.0.1:9/x",
            "api_key": "other",
        }
        ids = []
        for target, state in (
            (copied, "delivered"),
            (copied, "retrying"),
            (ad_hoc, "failed"),
        ):
            ids.append(
                _insert(
                    db,
                    "delivery_delivery",
                    **target,
                    door="composer",
                    payload=json.dumps({"type": "track", "event": "e", "userId": "u"}),
                    spec_problems="[]",
                    state=state,
                    created_at=now,
                    updated_at=now,
                )
            )
            _insert(
                db,
                "delivery_attempt",
                delivery_id=ids[-1],
                number=1,
                started_at=now,
                request_url=target["endpoint_url"],
                request_headers="[]",
                request_body='{"type":"track"}',
                response_headers="[]",
                created_at=now,
            )
        run = _insert(db, "delivery_run", door="cli", conditions="{}", created_at=now)
        db.execute(
            "UPDATE delivery_delivery SET run_id = ? WHERE id = ?", (run, ids[0])
        )
    server.manage("migrate", "-v0")

    targets = server.query(
        "SELECT id, subscription_id, name, endpoint_url, api_key, custom_settings"
        " FROM delivery_deliverytarget ORDER BY id"
    )
    settings = '{"region": "eu"}'
    assert [row[1:] for row in targets] == [
        (subscription, "Partner", "http://127.0.0.1:9/hook", "old-key", settings),
        (
            None,
            "ad hoc: http://127.0.0.1:9/x",
            "http://127.0.0.1:9/x",
            "other",
            settings,
        ),
    ]
    shared, own = targets[0][0], targets[1][0]
    assert server.query("SELECT target_id FROM delivery_delivery ORDER BY id") == [
        (shared,),
        (shared,),
        (own,),
    ]
    assert server.query("SELECT target_id FROM delivery_attempt ORDER BY id") == [
        (shared,),
        (shared,),
        (own,),
    ]
    columns = {row[1] for row in server.query("PRAGMA table_info(delivery_delivery)")}
    assert not {"api_key", "endpoint_url", "custom_settings"} & columns
    # The run had no open delivery: settled.
    assert server.query("SELECT settled_at IS NOT NULL FROM delivery_run") == [(1,)]
