"""Tests for the semantic-event templates: coverage, order and spec'd properties."""

import random
from datetime import UTC, datetime

import pytest

from sandbox.spec import (
    SOURCES,
    TEMPLATES,
    parse_timestamp,
    sample_event,
    templates_by_category,
    validate_event,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)

EXPECTED = {
    "E-commerce v2": [
        "Products Searched",
        "Product List Viewed",
        "Product List Filtered",
        "Promotion Viewed",
        "Promotion Clicked",
        "Product Clicked",
        "Product Viewed",
        "Product Added",
        "Product Removed",
        "Cart Viewed",
        "Checkout Started",
        "Checkout Step Viewed",
        "Checkout Step Completed",
        "Payment Info Entered",
        "Order Updated",
        "Order Completed",
        "Order Refunded",
        "Order Cancelled",
        "Coupon Entered",
        "Coupon Applied",
        "Coupon Denied",
        "Coupon Removed",
        "Product Added to Wishlist",
        "Product Removed from Wishlist",
        "Wishlist Product Added to Cart",
        "Product Shared",
        "Cart Shared",
        "Product Reviewed",
    ],
    "Video": [
        "Video Playback Started",
        "Video Playback Paused",
        "Video Playback Interrupted",
        "Video Playback Buffer Started",
        "Video Playback Buffer Completed",
        "Video Playback Seek Started",
        "Video Playback Seek Completed",
        "Video Playback Resumed",
        "Video Playback Completed",
        "Video Playback Exited",
        "Video Content Started",
        "Video Content Playing",
        "Video Content Completed",
        "Video Ad Started",
        "Video Ad Playing",
        "Video Ad Completed",
        "Video Quality Updated",
    ],
    "Mobile": [
        "Application Installed",
        "Application Opened",
        "Application Backgrounded",
        "Application Foregrounded",
        "Application Updated",
        "Application Uninstalled",
        "Application Crashed",
        "Install Attributed",
        "Push Notification Received",
        "Push Notification Tapped",
        "Push Notification Bounced",
        "Deep Link Opened",
        "Deep Link Clicked",
    ],
    "Email": [
        "Email Bounced",
        "Email Delivered",
        "Email Link Clicked",
        "Email Marked as Spam",
        "Email Opened",
        "Unsubscribed",
    ],
    "Live Chat": [
        "Live Chat Conversation Started",
        "Live Chat Conversation Ended",
        "Live Chat Message Sent",
        "Live Chat Message Received",
    ],
    "B2B SaaS": [
        "Account Created",
        "Account Deleted",
        "Signed Up",
        "Signed In",
        "Signed Out",
        "Invite Sent",
        "Account Added User",
        "Account Removed User",
        "Trial Started",
        "Trial Ended",
    ],
    "A/B Testing": ["Experiment Viewed"],
}

PRODUCT_FIELDS = {
    "product_id",
    "sku",
    "category",
    "name",
    "brand",
    "variant",
    "price",
    "quantity",
    "position",
    "url",
    "image_url",
}

# The Spec's key properties for a spot-check of templates, from each spec's tables.
KEY_PROPERTIES = {
    "Products Searched": {"query"},
    "Product List Viewed": {"list_id", "category", "products"},
    "Product List Filtered": {"list_id", "category", "filters", "sorts", "products"},
    "Promotion Viewed": {"promotion_id", "creative", "name", "position"},
    "Product Viewed": PRODUCT_FIELDS | {"currency", "value"},
    "Product Added": PRODUCT_FIELDS | {"cart_id"},
    "Cart Viewed": {"cart_id", "products"},
    "Checkout Started": {
        "order_id",
        "affiliation",
        "value",
        "revenue",
        "shipping",
        "tax",
        "discount",
        "currency",
        "products",
    },
    "Checkout Step Viewed": {
        "checkout_id",
        "step",
        "shipping_method",
        "payment_method",
    },
    "Payment Info Entered": {"checkout_id", "order_id", "step", "payment_method"},
    "Order Updated": {"order_id", "total", "revenue", "shipping", "tax", "products"},
    "Order Refunded": {"order_id", "total", "currency", "products"},
    "Coupon Applied": {"order_id", "cart_id", "coupon_id", "coupon_name", "discount"},
    "Coupon Denied": {"order_id", "cart_id", "coupon_id", "coupon_name", "reason"},
    "Product Added to Wishlist": PRODUCT_FIELDS | {"wishlist_id", "wishlist_name"},
    "Wishlist Product Added to Cart": PRODUCT_FIELDS
    | {"wishlist_id", "wishlist_name", "cart_id"},
    "Product Shared": PRODUCT_FIELDS - {"quantity", "position"}
    | {"share_via", "share_message", "recipient"},
    "Cart Shared": {"share_via", "share_message", "recipient", "cart_id", "products"},
    "Product Reviewed": {"product_id", "review_id", "review_body", "rating"},
    "Video Playback Paused": {
        "session_id",
        "content_asset_id",
        "content_pod_id",
        "ad_asset_id",
        "ad_pod_id",
        "ad_type",
        "position",
        "total_length",
        "bitrate",
        "framerate",
        "video_player",
        "sound",
        "full_screen",
        "ad_enabled",
        "quality",
        "livestream",
    },
    "Video Playback Interrupted": {"session_id", "method"},
    "Video Playback Seek Started": {"session_id", "position", "seek_position"},
    "Video Content Playing": {
        "session_id",
        "asset_id",
        "pod_id",
        "title",
        "description",
        "keywords",
        "season",
        "episode",
        "genre",
        "program",
        "publisher",
        "position",
        "total_length",
        "channel",
        "full_episode",
        "livestream",
        "airdate",
    },
    "Video Ad Playing": {
        "session_id",
        "asset_id",
        "pod_id",
        "pod_position",
        "type",
        "title",
        "publisher",
        "position",
        "total_length",
        "load_type",
        "content",
        "quartile",
    },
    "Video Quality Updated": {"bitrate", "framerate", "startupTime", "droppedFrames"},
    "Application Installed": {"version", "build"},
    "Application Opened": {
        "from_background",
        "referring_application",
        "url",
        "version",
        "build",
    },
    "Application Updated": {"previous_version", "previous_build", "version", "build"},
    "Install Attributed": {"provider", "campaign"},
    "Push Notification Tapped": {"campaign", "action"},
    "Deep Link Opened": {"provider", "url"},
    "Email Opened": {"email_id", "email_subject", "campaign_id", "campaign_name"},
    "Email Link Clicked": {"email_id", "link_id", "link_url"},
    "Unsubscribed": {"email_id", "list_id", "list_name"},
    "Account Created": {"account_name"},
    "Signed Up": {
        "type",
        "first_name",
        "last_name",
        "email",
        "phone",
        "username",
        "title",
    },
    "Signed In": {"username"},
    "Invite Sent": {
        "invitee_email",
        "invitee_first_name",
        "invitee_last_name",
        "invitee_role",
    },
    "Account Added User": {"role"},
    "Trial Started": {"trial_start_date", "trial_end_date", "trial_plan_name"},
    "Experiment Viewed": {
        "experiment_id",
        "experiment_name",
        "variation_id",
        "variation_name",
    },
}


def properties(template, seed=3, source="analytics.js"):
    event = sample_event(
        "track", source=source, template=template, now=NOW, rng=random.Random(seed)
    )
    return event["properties"]


def cents(amount):
    return round(amount * 100)


def test_templates_by_category_lists_every_spec_event_in_spec_order():
    assert templates_by_category() == list(EXPECTED.items())


def test_templates_by_category_starts_with_ecommerce():
    assert templates_by_category()[0][0] == "E-commerce v2"


def test_templates_are_keyed_by_name_in_category_order():
    names = [name for _, names in EXPECTED.items() for name in names]
    assert list(TEMPLATES) == names
    for category, names in EXPECTED.items():
        for name in names:
            assert TEMPLATES[name].name == name
            assert TEMPLATES[name].category == category


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_template_sample_is_spec_valid_for_every_source(template, source):
    event = sample_event(
        "track", source=source, template=template, now=NOW, rng=random.Random(11)
    )
    assert validate_event(event) == []
    assert event["type"] == "track"
    assert event["event"] == template


@pytest.mark.parametrize("template", KEY_PROPERTIES)
def test_template_has_the_specs_key_properties(template):
    assert KEY_PROPERTIES[template] <= set(properties(template))


def test_template_order_completed_amounts_add_up():
    for seed in range(30):
        order = properties("Order Completed", seed)
        assert {"checkout_id", "order_id", "affiliation", "products"} <= set(order)
        assert order["currency"] == "USD"
        line_total = sum(cents(p["price"]) * p["quantity"] for p in order["products"])
        assert cents(order["revenue"]) == line_total
        assert cents(order["subtotal"]) == cents(order["revenue"]) - cents(
            order["discount"]
        )
        assert order["total"] == pytest.approx(
            order["subtotal"] + order["shipping"] + order["tax"]
        )
        for product in order["products"]:
            assert set(product) >= PRODUCT_FIELDS


def test_template_order_completed_mentions_a_coupon_only_with_a_discount():
    orders = [properties("Order Completed", seed) for seed in range(30)]
    with_coupon = [order for order in orders if "coupon" in order]
    assert with_coupon
    assert all(order["discount"] > 0 for order in with_coupon)
    assert all(order["discount"] == 0 for order in orders if "coupon" not in order)


def test_template_checkout_started_value_counts_shipping_and_tax():
    checkout = properties("Checkout Started")
    assert checkout["value"] == pytest.approx(
        checkout["revenue"] + checkout["shipping"] + checkout["tax"]
    )


def test_template_order_updated_has_no_checkout_id_or_subtotal():
    for name in ("Order Updated", "Order Cancelled"):
        order = properties(name)
        assert "checkout_id" not in order
        assert "subtotal" not in order


def test_template_product_viewed_value_is_its_price():
    product = properties("Product Viewed")
    assert product["value"] == product["price"]
    assert product["currency"] == "USD"


def test_template_product_clicked_and_added_have_no_currency_or_value():
    for name in ("Product Clicked", "Product Added"):
        assert not {"currency", "value"} & set(properties(name))


def test_template_video_playback_started_uses_the_plural_forms():
    playback = properties("Video Playback Started")
    assert playback["position"] == 0
    for name in (
        "content_asset_ids",
        "content_pod_ids",
        "ad_asset_id",
        "ad_pod_id",
        "ad_type",
    ):
        assert isinstance(playback[name], list)
    assert "content_asset_id" not in playback


def test_template_video_positions_stay_within_the_video():
    for seed in range(20):
        playback = properties("Video Playback Paused", seed)
        assert 0 <= playback["position"] <= playback["total_length"]
        seek = properties("Video Playback Seek Started", seed)
        assert seek["position"] < seek["seek_position"] <= seek["total_length"]
    completed = properties("Video Playback Completed")
    assert completed["position"] == completed["total_length"]


def test_template_video_ad_nests_the_content():
    ad = properties("Video Ad Started")
    assert ad["position"] == 0
    assert ad["load_type"] in ("linear", "dynamic")
    assert ad["content"]["session_id"] == ad["session_id"]


@pytest.mark.parametrize("source", ["ios", "android"])
def test_template_application_updated_matches_the_app_in_context(source):
    event = sample_event(
        "track",
        source=source,
        template="Application Updated",
        now=NOW,
        rng=random.Random(5),
    )
    app = event["context"]["app"]
    assert event["properties"]["version"] == app["version"]
    assert event["properties"]["build"] == app["build"]
    assert event["properties"]["previous_version"] != app["version"]


def test_template_install_attributed_has_the_campaign_object():
    campaign = properties("Install Attributed")["campaign"]
    assert set(campaign) == {
        "source",
        "name",
        "medium",
        "content",
        "ad_creative",
        "ad_group",
    }


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("template", EXPECTED["B2B SaaS"])
def test_template_b2b_events_carry_context_group_id(template, source):
    event = sample_event(
        "track", source=source, template=template, now=NOW, rng=random.Random(2)
    )
    assert event["context"]["groupId"]


def test_template_non_b2b_events_have_no_context_group_id():
    assert "groupId" not in sample_event("track", template="Order Completed")["context"]


def test_template_signed_up_describes_the_user():
    event = sample_event(
        "track", source="server", template="Signed Up", now=NOW, rng=random.Random(4)
    )
    assert event["properties"]["email"].endswith("@example.com")
    assert event["properties"]["first_name"]


def test_template_trial_dates_are_fourteen_days_apart():
    for name in ("Trial Started", "Trial Ended"):
        trial = properties(name)
        start = parse_timestamp(trial["trial_start_date"])
        end = parse_timestamp(trial["trial_end_date"])
        assert (end - start).days == 14
    assert parse_timestamp(properties("Trial Started")["trial_start_date"]) == NOW
    assert parse_timestamp(properties("Trial Ended")["trial_end_date"]) == NOW


def test_template_application_backgrounded_has_no_properties():
    assert properties("Application Backgrounded") == {}


# Every property each event's table on the Spec pages lists, and nothing else
# (segmentio/segment-docs at 747b35d8f5f1: src/connections/spec/ecommerce/v2.md,
# video.md, mobile.md, email.md, live-chat.md, b2b-saas.md, ab-testing.md).
_ORDER = {
    "order_id",
    "affiliation",
    "total",
    "revenue",
    "shipping",
    "tax",
    "discount",
    "coupon",
    "currency",
    "products",
}
_ITEM = PRODUCT_FIELDS | {"coupon"}
_COUPON = {"order_id", "cart_id", "coupon_id"}
_WISHLIST = {"wishlist_id", "wishlist_name"} | _ITEM
_SHARE = {"share_via", "share_message", "recipient"}
_PLAYBACK = {
    "session_id",
    "content_asset_id",
    "content_pod_id",
    "ad_asset_id",
    "ad_pod_id",
    "ad_type",
    "position",
    "total_length",
    "bitrate",
    "framerate",
    "video_player",
    "sound",
    "full_screen",
    "ad_enabled",
    "quality",
    "livestream",
}
_CONTENT = {
    "session_id",
    "asset_id",
    "pod_id",
    "title",
    "description",
    "keywords",
    "season",
    "episode",
    "genre",
    "program",
    "publisher",
    "position",
    "total_length",
    "channel",
    "full_episode",
    "livestream",
    "airdate",
    "bitrate",
    "framerate",
}
_AD = {
    "session_id",
    "asset_id",
    "pod_id",
    "pod_position",
    "pod_length",
    "type",
    "title",
    "publisher",
    "position",
    "total_length",
    "load_type",
    "content",
    "quartile",
}
_EMAIL = {"email_id", "email_subject", "campaign_id", "campaign_name"}
_CHAT = {
    "agent_id",
    "agent_name",
    "agent_username",
    "conversation_id",
    "conversation_duration",
    "message_id",
}
_TRIAL = {"trial_start_date", "trial_end_date", "trial_plan_name"}
_PUSH = {"campaign"}
SPEC_PROPERTIES = {
    "Products Searched": {"query"},
    "Product List Viewed": {"list_id", "category", "products"},
    "Product List Filtered": {"list_id", "category", "filters", "sorts", "products"},
    "Promotion Viewed": {"promotion_id", "creative", "name", "position"},
    "Promotion Clicked": {"promotion_id", "creative", "name", "position"},
    "Product Clicked": _ITEM,
    "Product Viewed": _ITEM | {"currency", "value"},
    "Product Added": _ITEM | {"cart_id"},
    "Product Removed": _ITEM | {"cart_id"},
    "Cart Viewed": {"cart_id", "products"},
    "Checkout Started": _ORDER - {"total"} | {"value"},
    "Checkout Step Viewed": {
        "checkout_id",
        "step",
        "shipping_method",
        "payment_method",
    },
    "Checkout Step Completed": {
        "checkout_id",
        "step",
        "shipping_method",
        "payment_method",
    },
    "Payment Info Entered": {
        "checkout_id",
        "order_id",
        "step",
        "shipping_method",
        "payment_method",
    },
    "Order Updated": _ORDER,
    "Order Completed": _ORDER | {"checkout_id", "subtotal"},
    # The table lists order_id; the text asks for Order Completed's properties.
    "Order Refunded": _ORDER | {"checkout_id", "subtotal"},
    "Order Cancelled": _ORDER,
    "Coupon Entered": _COUPON,
    "Coupon Applied": _COUPON | {"coupon_name", "discount"},
    "Coupon Denied": _COUPON | {"coupon_name", "reason"},
    "Coupon Removed": _COUPON | {"coupon_name", "discount"},
    "Product Added to Wishlist": _WISHLIST,
    "Product Removed from Wishlist": _WISHLIST,
    "Wishlist Product Added to Cart": _WISHLIST | {"cart_id"},
    "Product Shared": _SHARE | _ITEM - {"quantity", "coupon", "position"},
    "Cart Shared": _SHARE | {"cart_id", "products"},
    "Product Reviewed": {"product_id", "review_id", "review_body", "rating"},
    # Playback Started takes the plural forms of the asset and pod ids.
    "Video Playback Started": _PLAYBACK - {"content_asset_id", "content_pod_id"}
    | {"content_asset_ids", "content_pod_ids"},
    "Video Playback Paused": _PLAYBACK,
    "Video Playback Interrupted": _PLAYBACK | {"method"},
    "Video Playback Buffer Started": _PLAYBACK,
    "Video Playback Buffer Completed": _PLAYBACK,
    "Video Playback Seek Started": _PLAYBACK | {"seek_position"},
    "Video Playback Seek Completed": _PLAYBACK,
    "Video Playback Resumed": _PLAYBACK,
    "Video Playback Completed": _PLAYBACK,
    "Video Playback Exited": _PLAYBACK,
    "Video Content Started": _CONTENT,
    "Video Content Playing": _CONTENT,
    "Video Content Completed": _CONTENT,
    "Video Ad Started": _AD,
    "Video Ad Playing": _AD,
    "Video Ad Completed": _AD,
    "Video Quality Updated": {"bitrate", "framerate", "startupTime", "droppedFrames"},
    "Application Installed": {"version", "build"},
    "Application Opened": {
        "from_background",
        "url",
        "referring_application",
        "version",
        "build",
    },
    "Application Backgrounded": set(),
    "Application Foregrounded": set(),
    "Application Updated": {"previous_version", "previous_build", "version", "build"},
    "Application Uninstalled": set(),
    "Application Crashed": set(),
    "Install Attributed": {"provider", "campaign"},
    "Push Notification Received": _PUSH,
    "Push Notification Tapped": _PUSH | {"action"},
    "Push Notification Bounced": _PUSH | {"action"},
    "Deep Link Opened": {"provider", "url"},
    "Deep Link Clicked": {"provider", "url"},
    "Email Bounced": _EMAIL,
    "Email Delivered": _EMAIL,
    "Email Link Clicked": _EMAIL | {"link_id", "link_url"},
    "Email Marked as Spam": _EMAIL,
    "Email Opened": _EMAIL,
    "Unsubscribed": _EMAIL | {"list_id", "list_name"},
    "Live Chat Conversation Started": _CHAT,
    "Live Chat Conversation Ended": _CHAT,
    "Live Chat Message Sent": _CHAT,
    "Live Chat Message Received": _CHAT,
    "Account Created": {"account_name"},
    "Account Deleted": {"account_name"},
    "Signed Up": {
        "type",
        "first_name",
        "last_name",
        "email",
        "phone",
        "username",
        "title",
    },
    "Signed In": {"username"},
    "Signed Out": {"username"},
    "Invite Sent": {
        "invitee_email",
        "invitee_first_name",
        "invitee_last_name",
        "invitee_role",
    },
    "Account Added User": {"role"},
    "Account Removed User": set(),
    "Trial Started": _TRIAL,
    "Trial Ended": _TRIAL,
    "Experiment Viewed": {
        "experiment_id",
        "experiment_name",
        "variation_id",
        "variation_name",
    },
}
# Install Attributed's and the push events' campaign objects.
SPEC_CAMPAIGN = {
    "Install Attributed": {
        "source",
        "name",
        "medium",
        "content",
        "ad_creative",
        "ad_group",
    },
    "Push Notification Received": {"name", "medium", "content", "source"},
    "Push Notification Tapped": {"name", "medium", "content", "source"},
    "Push Notification Bounced": {"name", "medium", "content", "source"},
}
# Email's context tables: the recipient everywhere; where the recipient acted,
# also the opening computer's ip and browser (user_agent, in snake_case).
EMAIL_READER = {
    "Email Link Clicked",
    "Email Marked as Spam",
    "Email Opened",
    "Unsubscribed",
}


def test_spec_properties_cover_every_template():
    assert set(SPEC_PROPERTIES) == set(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_properties_are_only_those_the_spec_lists(template):
    for seed in range(8):
        found = set(properties(template, seed))
        assert found <= SPEC_PROPERTIES[template], found - SPEC_PROPERTIES[template]


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_product_items_have_only_the_specs_fields(template):
    for seed in range(4):
        for item in properties(template, seed).get("products", []):
            assert set(item) <= _ITEM
            assert "product_id" in item


@pytest.mark.parametrize("template", SPEC_CAMPAIGN)
def test_template_campaign_objects_have_the_specs_fields(template):
    campaign = properties(template)["campaign"]
    assert set(campaign) <= SPEC_CAMPAIGN[template]


@pytest.mark.parametrize("template", EXPECTED["Live Chat"])
def test_template_live_chat_events_carry_all_six_properties(template):
    for seed in range(5):
        chat = properties(template, seed)
        assert set(chat) == _CHAT
        assert isinstance(chat["conversation_duration"], int)
        assert "message_body" not in chat
    assert properties("Live Chat Conversation Started")["conversation_duration"] == 0


def test_template_product_reviewed_rating_is_a_string():
    for seed in range(10):
        assert isinstance(properties("Product Reviewed", seed)["rating"], str)


def test_template_coupon_entered_has_no_coupon_name():
    for seed in range(5):
        assert set(properties("Coupon Entered", seed)) == _COUPON


def test_template_product_shared_has_no_quantity_or_position():
    for seed in range(5):
        assert not {"quantity", "position"} & set(properties("Product Shared", seed))


def test_template_account_removed_user_has_no_properties():
    event = sample_event(
        "track", template="Account Removed User", now=NOW, rng=random.Random(1)
    )
    assert event["properties"] == {}
    assert event["context"]["groupId"]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("template", EXPECTED["Email"])
def test_template_email_events_carry_the_specs_context(template, source):
    event = sample_event(
        "track", source=source, template=template, now=NOW, rng=random.Random(6)
    )
    context = event["context"]
    assert context["traits"] == {"email": context["traits"]["email"]}
    assert context["traits"]["email"].endswith("@example.com")
    if template in EMAIL_READER:
        assert context["ip"]
        assert context["user_agent"].startswith("Mozilla/5.0")
    else:
        assert "user_agent" not in context
    # The library's own context stays.
    assert context["library"]["name"] == event["context"]["library"]["name"]
    assert validate_event(event) == []


@pytest.mark.parametrize("template", EXPECTED["Email"])
def test_template_email_context_on_a_server_source_is_only_the_specs(template):
    event = sample_event(
        "track", source="server", template=template, now=NOW, rng=random.Random(6)
    )
    expected = {"library", "traits"}
    if template in EMAIL_READER:
        expected |= {"ip", "user_agent"}
    assert set(event["context"]) == expected
