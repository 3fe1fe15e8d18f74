"""What reading a replay's source costs the database, chunk after chunk."""

import pytest
from django.db import connection

from sandbox.delivery.models import Delivery
from sandbox.replay import services
from tests.factories import ad_hoc_target
from tests.replay.helpers import write_lines


@pytest.mark.django_db(transaction=True)
def test_each_chunk_looks_its_message_ids_up_by_message_id_not_by_run(
    receiver, tmp_path
):
    path = write_lines(tmp_path / "e.jsonl", 600)
    replay = services.replay_create(
        target=ad_hoc_target(receiver.url("/ok")), path=path
    )
    connection.ensure_connection()
    statements: list[str] = []
    connection.connection.set_trace_callback(statements.append)
    try:
        services.replay_feed(replay_id=replay.pk, chunk_events=200, window=1_000)
    finally:
        connection.connection.set_trace_callback(None)
    assert Delivery.objects.filter(run_id=replay.run_id).count() == 600
    lookups = [sql for sql in statements if "+run_id" in sql]
    assert len(lookups) == 3  # one per chunk
    with connection.cursor() as cursor:
        for sql in lookups:
            cursor.execute("EXPLAIN QUERY PLAN " + sql)
            plan = " ".join(str(row[-1]) for row in cursor.fetchall())
            # By the messageId index: the run's earlier rows are not read.
            assert "delivery_dedupe" in plan, plan
            assert "run" not in plan, plan
