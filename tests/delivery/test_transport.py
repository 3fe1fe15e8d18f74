"""The transport's words for a URL it will not send to, without a database."""

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
