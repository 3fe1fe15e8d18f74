"""Answering a request as a plain ASGI app ahead of Django, as the tracking API
(sandbox.sources.api) and the mock endpoint (sandbox.mock.receiver) do."""

import json

JSON = [(b"content-type", b"application/json")]


async def read_body(receive, *, limit: int) -> tuple[bytes, int]:
    """The body's first `limit` bytes and its whole size: the rest is read and
    thrown away, so the connection stays usable."""
    chunks: list[bytes] = []
    kept = size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if kept < limit:
            chunks.append(chunk[: limit - kept])
            kept += len(chunks[-1])
    return b"".join(chunks), size


async def answer(send, status: int, body: bytes, headers: list) -> None:
    """One whole response: its status, `headers` and the body's length, then
    the body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def answer_json(send, status: int, body: dict, headers: list) -> None:
    await answer(send, status, json.dumps(body).encode(), [*headers, *JSON])
