"""The transport's words for a URL it will not send to, without a database."""

import asyncio

from sandbox.delivery import transport, webhook
from sandbox.spec.endpoint_url import ENDPOINT_URL_SCHEME_ERROR


async def test_send_refuses_a_non_http_url_in_the_subscriptions_words():
    request = webhook.build_request(
        url="ftp://partner.example/in", api_key="k", custom_settings={}, event={}
    )
    session = transport.new_session()
    try:
        exchange = await transport.send(session, request, timeout=1, body_limit=10)
    finally:
        await session.close()
    assert exchange.error_kind == "invalid_url"
    assert exchange.error_message == (
        f"{ENDPOINT_URL_SCHEME_ERROR} (got 'ftp://partner.example/in')."
    )


async def test_an_answer_that_is_not_http_is_said_so_without_a_status_of_its_own():
    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nBad Header Line\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = webhook.build_request(
        url=f"http://127.0.0.1:{port}/in", api_key="k", custom_settings={}, event={}
    )
    session = transport.new_session()
    try:
        exchange = await transport.send(session, request, timeout=5, body_limit=10)
    finally:
        await session.close()
        server.close()
        await server.wait_closed()
    assert exchange.status is None
    assert exchange.error_kind == "other"
    assert exchange.error_message.startswith(
        "The endpoint's answer could not be read as HTTP: "
    ), exchange.error_message
    assert "400" not in exchange.error_message
