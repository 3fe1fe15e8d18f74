"""The server's engine as a process of its own: it delivers, the server hears of
each change it commits (so live pages update at once), and it is started again
if it dies."""

import os
import queue
import signal
import time

import pytest

from sandbox.delivery.engine_process import EngineProcess
from sandbox.delivery.models import Delivery, State
from tests.factories import make_delivery, make_subscription

pytestmark = pytest.mark.slow


def _wait_for(condition, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _announced(changes: queue.Queue, delivery_id: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            change = changes.get(timeout=0.1)
        except queue.Empty:
            continue
        if delivery_id in change.get("deliveries", ()):
            return True
    return False


@pytest.fixture
def engine_process():
    changes: queue.Queue = queue.Queue()
    process = EngineProcess(announce=changes.put)
    process.start()
    yield process, changes
    process.stop()


def _state(pk: int) -> str:
    return Delivery.objects.values_list("state", flat=True).get(pk=pk)


def _sent_through(process, changes, subscription) -> None:
    """Enqueue one delivery, wake the engine, and see it delivered and heard of."""
    delivery = make_delivery(subscription=subscription)
    process.wake()
    assert _announced(changes, delivery.pk)
    assert _wait_for(lambda: _state(delivery.pk) == State.DELIVERED)


@pytest.mark.django_db(transaction=True)
def test_it_delivers_and_the_server_hears_of_each_change(receiver, engine_process):
    process, changes = engine_process
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    _sent_through(process, changes, subscription)
    assert len(receiver.received) == 1
    _sent_through(process, changes, subscription)
    assert len(receiver.received) == 2


@pytest.mark.django_db(transaction=True)
def test_a_dead_engine_process_is_started_again(receiver, engine_process):
    process, changes = engine_process
    subscription = make_subscription(endpoint_url=receiver.url("/ok"))
    first = make_delivery(subscription=subscription)
    assert _wait_for(lambda: _state(first.pk) == State.DELIVERED)
    dead = process.pid
    os.kill(dead, signal.SIGKILL)
    assert _wait_for(lambda: process.pid not in (None, dead), timeout=10)
    _sent_through(process, changes, subscription)
    assert len(receiver.received) == 2


@pytest.mark.django_db(transaction=True)
def test_the_engine_process_ends_when_the_server_lets_go(engine_process):
    process, _ = engine_process
    child = process._process
    assert child.poll() is None
    process.stop()
    assert child.wait(timeout=5) == 0
