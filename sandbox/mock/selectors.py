"""Reads for mock endpoints and the requests they recorded."""

from typing import NamedTuple

from django.db.models import Count, Max, QuerySet

from sandbox.mock.models import MockEndpoint, MockRequest
from sandbox.rows import row_or_none


class MockRequestStats(NamedTuple):
    count: int
    latest_id: int

    @property
    def version(self) -> str:
        """Changes whenever a request is recorded or cleared, so a poll can skip."""
        return f"{self.count}-{self.latest_id}"


def mock_endpoint_list() -> QuerySet[MockEndpoint]:
    return MockEndpoint.objects.annotate(
        request_count=Count("requests"),
        last_request_at=Max("requests__created_at"),
    )


def mock_endpoint_get(*, slug: str) -> MockEndpoint | None:
    # One plain statement (sandbox.rows): every request the mock receives asks.
    return row_or_none(MockEndpoint, "slug", slug)


def mock_request_list(*, endpoint: MockEndpoint, limit: int = 100) -> list[MockRequest]:
    return list(endpoint.requests.order_by("-created_at", "-id")[:limit])


def mock_request_stats(*, endpoint: MockEndpoint) -> MockRequestStats:
    summary = endpoint.requests.aggregate(count=Count("id"), latest_id=Max("id"))
    return MockRequestStats(count=summary["count"], latest_id=summary["latest_id"] or 0)
