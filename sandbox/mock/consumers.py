"""The mock endpoint page's websocket: new requests, relayed as they are recorded."""

from sandbox.delivery import broadcast
from sandbox.delivery.consumers import LiveConsumer


class MockRequestsConsumer(LiveConsumer):
    kind = broadcast.MOCK_REQUESTS
