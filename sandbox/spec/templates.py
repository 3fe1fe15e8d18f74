"""Segment's semantic events (E-commerce v2, Video, Mobile, ...) as sample templates.

Each template carries the properties (and, where the Spec names them, the context
fields) of its event's table on the Spec pages, and nothing the tables leave out.
Source: the segmentio/segment-docs repository at 747b35d8f5f1 (2025-11-07), which
is segment.com/docs: src/connections/spec/ecommerce/v2.md, video.md, mobile.md,
email.md, live-chat.md, b2b-saas.md and ab-testing.md. Where a page's examples
hold more than its table (Live Chat's message_body), the table wins.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.spec.catalogue import (
    BROWSERS,
    COUPONS,
    PRODUCT_CATEGORIES,
    PRODUCTS,
    SEARCH_QUERIES,
    STORE_NAME,
    STORE_URL,
    Actor,
    Coupon,
    Product,
    hex_id,
    ip_address,
    make_actor,
    money,
    new_uuid,
)
from sandbox.spec.timestamps import format_timestamp

ECOMMERCE = "E-commerce v2"
VIDEO = "Video"
MOBILE = "Mobile"
EMAIL = "Email"
LIVE_CHAT = "Live Chat"
B2B_SAAS = "B2B SaaS"
AB_TESTING = "A/B Testing"
CATEGORIES: tuple[str, ...] = (
    ECOMMERCE,
    VIDEO,
    MOBILE,
    EMAIL,
    LIVE_CHAT,
    B2B_SAAS,
    AB_TESTING,
)

Properties = dict[str, Any]
PropertiesBuilder = Callable[[random.Random, Actor], Properties]
ContextBuilder = Callable[[random.Random, Actor], dict[str, Any]]


@dataclass(frozen=True)
class Template:
    """One semantic track event: its name, its spec family and how to fill it in."""

    name: str
    category: str
    build_properties: PropertiesBuilder = field(repr=False, compare=False)
    # Context fields the Spec gives the event (B2B SaaS's groupId, Email's traits).
    build_context: ContextBuilder | None = field(
        default=None, repr=False, compare=False
    )

    def properties(self, rng: random.Random, actor: Actor | None = None) -> Properties:
        """Spec'd properties with fresh values; actor ties them to one person."""
        if actor is None:
            actor = make_actor(rng, datetime.now(UTC))
        return self.build_properties(rng, actor)

    def context(self, rng: random.Random, actor: Actor) -> dict[str, Any]:
        """The Spec's context fields for this event, to merge into the sample's."""
        if self.build_context is None:
            return {}
        return self.build_context(rng, actor)


# E-commerce v2 ------------------------------------------------------------------------

AFFILIATION = f"{STORE_NAME} Online Store"


def _product(
    product: Product, *, position: int | None, quantity: int | None = 1
) -> Properties:
    fields: Properties = {
        "product_id": product.product_id,
        "sku": product.sku,
        "category": product.category,
        "name": product.name,
        "brand": product.brand,
        "variant": product.variant,
        "price": money(product.price_cents),
    }
    if quantity is not None:
        fields["quantity"] = quantity
    if position is not None:
        fields["position"] = position
    fields.update(url=product.url, image_url=product.image_url)
    return fields


def _pick_products(rng: random.Random, count: int) -> list[Product]:
    return rng.sample(PRODUCTS, count)


def _cart_id(rng: random.Random) -> str:
    return f"cart_{hex_id(rng, 16)}"


def _order_id(rng: random.Random) -> str:
    return hex_id(rng, 24)


def _checkout_id(rng: random.Random) -> str:
    return f"chk_{hex_id(rng, 20)}"


@dataclass(frozen=True)
class _Order:
    """An order whose amounts add up the way the Spec's Order Completed example does."""

    products: list[Properties]
    revenue_cents: int
    discount_cents: int
    shipping_cents: int
    tax_cents: int
    coupon: Coupon | None

    @property
    def subtotal_cents(self) -> int:
        return self.revenue_cents - self.discount_cents

    @property
    def total_cents(self) -> int:
        return self.subtotal_cents + self.shipping_cents + self.tax_cents

    def amounts(self, *, subtotal: bool = True) -> Properties:
        fields: Properties = {"affiliation": AFFILIATION}
        fields["total"] = money(self.total_cents)
        if subtotal:
            fields["subtotal"] = money(self.subtotal_cents)
        fields.update(
            revenue=money(self.revenue_cents),
            shipping=money(self.shipping_cents),
            tax=money(self.tax_cents),
            discount=money(self.discount_cents),
        )
        if self.coupon is not None:
            fields["coupon"] = self.coupon.code
        fields.update(currency="USD", products=self.products)
        return fields


def _order(rng: random.Random, actor: Actor) -> _Order:
    lines = []
    revenue = 0
    for position, product in enumerate(_pick_products(rng, rng.randint(1, 3)), 1):
        quantity = rng.choice((1, 1, 1, 2, 3))
        revenue += product.price_cents * quantity
        lines.append(_product(product, position=position, quantity=quantity))
    coupon = rng.choice((*COUPONS, None, None))
    # The Spec's example: revenue is the products' sum, subtotal is after the discount.
    discount = revenue * coupon.percent_off // 100 if coupon else 0
    shipping = 0 if revenue - discount >= 15000 else rng.choice((595, 995))
    tax = round((revenue - discount) * actor.place.tax_rate)
    return _Order(lines, revenue, discount, shipping, tax, coupon)


def _products_searched(rng: random.Random, actor: Actor) -> Properties:
    return {"query": rng.choice(SEARCH_QUERIES)}


def _listed_products(category: str) -> list[Properties]:
    in_category = [product for product in PRODUCTS if product.category == category]
    return [
        _product(product, position=position, quantity=None)
        for position, product in enumerate(in_category, 1)
    ]


def _product_list_viewed(rng: random.Random, actor: Actor) -> Properties:
    category = rng.choice(PRODUCT_CATEGORIES)
    return {
        "list_id": f"{category.lower()}_grid",
        "category": category,
        "products": _listed_products(category),
    }


def _product_list_filtered(rng: random.Random, actor: Actor) -> Properties:
    category = rng.choice(PRODUCT_CATEGORIES)
    return {
        "list_id": f"{category.lower()}_grid",
        "category": category,
        "filters": [
            {"type": "brand", "value": "Switchback"},
            {"type": "price", "value": "under_150"},
        ],
        "sorts": [{"type": "price", "value": rng.choice(("asc", "desc"))}],
        "products": _listed_products(category),
    }


def _promotion(rng: random.Random, actor: Actor) -> Properties:
    return {
        "promotion_id": "promo_summer_2025",
        "creative": rng.choice(("top_banner_2", "homepage_hero_a")),
        "name": "Summer Sale 2025",
        "position": rng.choice(("banner_slot_1", "home_hero")),
    }


def _single_product(rng: random.Random, *, quantity: int = 1) -> Properties:
    product = rng.choice(PRODUCTS)
    return _product(product, position=rng.randint(1, 12), quantity=quantity)


def _product_clicked(rng: random.Random, actor: Actor) -> Properties:
    return _single_product(rng)


def _product_viewed(rng: random.Random, actor: Actor) -> Properties:
    fields = _single_product(rng)
    fields.update(currency="USD", value=fields["price"])
    return fields


def _product_added(rng: random.Random, actor: Actor) -> Properties:
    return {
        "cart_id": _cart_id(rng),
        **_single_product(rng, quantity=rng.randint(1, 2)),
    }


def _product_removed(rng: random.Random, actor: Actor) -> Properties:
    return {"cart_id": _cart_id(rng), **_single_product(rng)}


def _cart_viewed(rng: random.Random, actor: Actor) -> Properties:
    order = _order(rng, actor)
    return {"cart_id": _cart_id(rng), "products": order.products}


def _checkout_started(rng: random.Random, actor: Actor) -> Properties:
    order = _order(rng, actor)
    fields = {"order_id": _order_id(rng), "affiliation": AFFILIATION}
    # As in the Spec's example: value counts shipping and tax, revenue doesn't.
    fields["value"] = money(
        order.revenue_cents + order.shipping_cents + order.tax_cents
    )
    amounts = order.amounts(subtotal=False)
    del amounts["total"]
    return fields | amounts


_SHIPPING_METHODS = ("FedEx Ground", "UPS 2nd Day Air", "USPS Priority Mail")
_PAYMENT_METHODS = ("Visa", "Mastercard", "American Express", "PayPal", "Apple Pay")


def _checkout_step(rng: random.Random, actor: Actor) -> Properties:
    return {
        "checkout_id": _checkout_id(rng),
        "step": rng.randint(1, 4),
        "shipping_method": rng.choice(_SHIPPING_METHODS),
        "payment_method": rng.choice(_PAYMENT_METHODS),
    }


def _payment_info_entered(rng: random.Random, actor: Actor) -> Properties:
    fields = _checkout_step(rng, actor)
    fields.update(order_id=_order_id(rng), step=3)
    return fields


def _order_updated(rng: random.Random, actor: Actor) -> Properties:
    return {"order_id": _order_id(rng)} | _order(rng, actor).amounts(subtotal=False)


def _order_completed(rng: random.Random, actor: Actor) -> Properties:
    ids = {"checkout_id": _checkout_id(rng), "order_id": _order_id(rng)}
    return ids | _order(rng, actor).amounts()


def _order_refunded(rng: random.Random, actor: Actor) -> Properties:
    order = _order(rng, actor)
    return {
        "order_id": _order_id(rng),
        "total": money(order.total_cents),
        "currency": "USD",
        "products": order.products,
    }


def _coupon(rng: random.Random) -> Properties:
    coupon = rng.choice(COUPONS)
    return {
        "order_id": _order_id(rng),
        "cart_id": _cart_id(rng),
        "coupon_id": coupon.id,
        "coupon_name": coupon.name,
    }


def _coupon_entered(rng: random.Random, actor: Actor) -> Properties:
    # Coupon Entered's table lists no coupon_name (Applied, Denied, Removed do).
    fields = _coupon(rng)
    del fields["coupon_name"]
    return fields


def _coupon_with_discount(rng: random.Random, actor: Actor) -> Properties:
    fields = _coupon(rng)
    fields["discount"] = money(rng.choice((500, 750, 1000, 1850)))
    return fields


def _coupon_denied(rng: random.Random, actor: Actor) -> Properties:
    fields = _coupon(rng)
    fields["reason"] = rng.choice(("Coupon expired", "Minimum order value not met"))
    return fields


def _wishlist(rng: random.Random) -> Properties:
    return {
        "wishlist_id": f"wl_{hex_id(rng, 12)}",
        "wishlist_name": rng.choice(("Summer Hikes", "Gift Ideas", "Camp Setup")),
    }


def _wishlist_product(rng: random.Random, actor: Actor) -> Properties:
    return _wishlist(rng) | _single_product(rng)


def _wishlist_product_added_to_cart(rng: random.Random, actor: Actor) -> Properties:
    return _wishlist(rng) | {"cart_id": _cart_id(rng)} | _single_product(rng)


def _share(rng: random.Random) -> Properties:
    return {
        "share_via": rng.choice(("email", "sms", "whatsapp")),
        "share_message": "Hey, check out this gear for our trip!",
        "recipient": "friend@example.com",
    }


def _product_shared(rng: random.Random, actor: Actor) -> Properties:
    # Product Shared's table has the product's fields but no quantity or position.
    return _share(rng) | _product(rng.choice(PRODUCTS), position=None, quantity=None)


def _cart_shared(rng: random.Random, actor: Actor) -> Properties:
    products = [{"product_id": p.product_id} for p in _pick_products(rng, 2)]
    return _share(rng) | {"cart_id": _cart_id(rng), "products": products}


# The Spec types rating as a String.
_REVIEWS = (
    ("5", "Comfortable straight out of the box and grippy on wet rock."),
    ("4", "Great fit, runs slightly small. Order half a size up."),
    ("2", "Started leaking after two weeks of rain."),
)


def _product_reviewed(rng: random.Random, actor: Actor) -> Properties:
    rating, body = rng.choice(_REVIEWS)
    return {
        "product_id": rng.choice(PRODUCTS).product_id,
        "review_id": f"rev_{hex_id(rng, 10)}",
        "review_body": body,
        "rating": rating,
    }


# Video --------------------------------------------------------------------------------

_SHOW = {
    "program": "Trail Talk",
    "publisher": f"{STORE_NAME} Media",
    "genre": "Outdoors",
    "channel": "Switchback TV",
}
_EPISODES = (
    ("Crossing the Sierra High Route", "Five days off-trail in the high Sierra.", 1),
    ("Packing Light for Long Trails", "What we carry, and what we left at home.", 2),
    ("Winter Camping Basics", "Staying warm and dry when it drops below zero.", 3),
)


@dataclass(frozen=True)
class _Video:
    session_id: str
    content_asset_id: str
    content_pod_id: str
    ad_asset_id: str
    ad_pod_id: str
    ad_type: str
    total_length: int
    position: int
    bitrate: int
    framerate: float
    sound: int
    full_screen: bool
    quality: str


def _video(rng: random.Random) -> _Video:
    total_length = rng.randint(600, 2400)
    return _Video(
        session_id=hex_id(rng, 12),
        content_asset_id=f"ep_{rng.randint(1000, 9999)}",
        content_pod_id=f"segment_{rng.choice('ABC')}",
        ad_asset_id=f"ad_{rng.randint(100, 999)}",
        ad_pod_id=f"adpod_{rng.choice('AB')}",
        ad_type=rng.choice(("pre-roll", "mid-roll")),
        total_length=total_length,
        position=rng.randint(10, total_length - 60),
        bitrate=rng.choice((2500, 4500, 6000)),
        framerate=rng.choice((24.0, 29.97, 30.0)),
        sound=rng.randint(20, 100),
        full_screen=rng.random() < 0.4,
        quality=rng.choice(("hd720", "hd1080")),
    )


def _playback(video: _Video, *, position: int | None = None) -> Properties:
    return {
        "session_id": video.session_id,
        "content_asset_id": video.content_asset_id,
        "content_pod_id": video.content_pod_id,
        "ad_asset_id": video.ad_asset_id,
        "ad_pod_id": video.ad_pod_id,
        "ad_type": video.ad_type,
        "position": video.position if position is None else position,
        "total_length": video.total_length,
        "bitrate": video.bitrate,
        "framerate": video.framerate,
        "video_player": "html5",
        "sound": video.sound,
        "full_screen": video.full_screen,
        "ad_enabled": True,
        "quality": video.quality,
        "livestream": False,
    }


def _playback_started(rng: random.Random, actor: Actor) -> Properties:
    video = _video(rng)
    fields = _playback(video, position=0)
    # The Spec gives Playback Started the plural forms: a session can hold several pods.
    del fields["content_asset_id"], fields["content_pod_id"]
    fields.update(
        content_asset_ids=[video.content_asset_id],
        content_pod_ids=[video.content_pod_id, f"{video.content_pod_id}_2"],
        ad_asset_id=[video.ad_asset_id],
        ad_pod_id=[video.ad_pod_id],
        ad_type=[video.ad_type],
    )
    return fields


def _playback_event(rng: random.Random, actor: Actor) -> Properties:
    return _playback(_video(rng))


def _playback_interrupted(rng: random.Random, actor: Actor) -> Properties:
    fields = _playback(_video(rng))
    fields["method"] = rng.choice(("browser redirect", "device lock", "call"))
    return fields


def _seek_started(rng: random.Random, actor: Actor) -> Properties:
    video = _video(rng)
    fields = _playback(video)
    fields["seek_position"] = min(video.position + 120, video.total_length - 1)
    return fields


def _seek_completed(rng: random.Random, actor: Actor) -> Properties:
    video = _video(rng)
    return _playback(video, position=min(video.position + 120, video.total_length - 1))


def _playback_completed(rng: random.Random, actor: Actor) -> Properties:
    video = _video(rng)
    return _playback(video, position=video.total_length)


def _content(rng: random.Random, video: _Video, *, position: int) -> Properties:
    title, description, episode = rng.choice(_EPISODES)
    return {
        "session_id": video.session_id,
        "asset_id": video.content_asset_id,
        "pod_id": video.content_pod_id,
        "title": title,
        "description": description,
        "keywords": ["hiking", "backpacking", "gear"],
        "season": "2",
        "episode": str(episode),
        "genre": _SHOW["genre"],
        "program": _SHOW["program"],
        "publisher": _SHOW["publisher"],
        "position": position,
        "total_length": video.total_length,
        "channel": _SHOW["channel"],
        "full_episode": True,
        "livestream": False,
        "airdate": f"2025-{rng.randint(1, 9):02d}-{rng.randint(1, 28):02d}",
        "bitrate": video.bitrate,
        "framerate": video.framerate,
    }


def _content_started(rng: random.Random, actor: Actor) -> Properties:
    return _content(rng, _video(rng), position=0)


def _content_playing(rng: random.Random, actor: Actor) -> Properties:
    video = _video(rng)
    return _content(rng, video, position=video.position)


def _content_completed(rng: random.Random, actor: Actor) -> Properties:
    video = _video(rng)
    return _content(rng, video, position=video.total_length)


def _ad(rng: random.Random, *, stage: str) -> Properties:
    video = _video(rng)
    ad_length = rng.choice((15, 30))
    position = {"start": 0, "playing": ad_length // 2, "end": ad_length}[stage]
    fields: Properties = {
        "session_id": video.session_id,
        "asset_id": video.ad_asset_id,
        "pod_id": video.ad_pod_id,
        "pod_position": rng.randint(1, 2),
        "pod_length": 2,
        "type": video.ad_type,
        "title": "Stormshell: Built for the Storm",
        "publisher": "Northpeak",
        "position": position,
        "total_length": ad_length,
        "load_type": rng.choice(("linear", "dynamic")),
        "content": _content(rng, video, position=video.position),
    }
    if stage == "playing":
        fields["quartile"] = 2
    return fields


def _ad_started(rng: random.Random, actor: Actor) -> Properties:
    return _ad(rng, stage="start")


def _ad_playing(rng: random.Random, actor: Actor) -> Properties:
    return _ad(rng, stage="playing")


def _ad_completed(rng: random.Random, actor: Actor) -> Properties:
    return _ad(rng, stage="end")


def _quality_updated(rng: random.Random, actor: Actor) -> Properties:
    # The Spec names these four in camelCase, unlike the rest of the Video spec.
    return {
        "bitrate": rng.choice((2500, 4500, 6000)),
        "framerate": rng.choice((24.0, 29.97, 30.0)),
        "startupTime": round(rng.uniform(0.4, 2.5), 2),
        "droppedFrames": rng.randint(0, 40),
    }


# Mobile -------------------------------------------------------------------------------


def _application_installed(rng: random.Random, actor: Actor) -> Properties:
    return {"version": actor.app.version, "build": actor.app.build}


def _application_opened(rng: random.Random, actor: Actor) -> Properties:
    return {
        "from_background": rng.random() < 0.5,
        "referring_application": rng.choice(
            ("com.apple.mobilesafari", "com.google.Gmail")
        ),
        "url": "switchback://collections/footwear",
        "version": actor.app.version,
        "build": actor.app.build,
    }


def _no_properties(rng: random.Random, actor: Actor) -> Properties:
    return {}


def _application_updated(rng: random.Random, actor: Actor) -> Properties:
    return {
        "previous_version": actor.app.previous_version,
        "previous_build": actor.app.previous_build,
        "version": actor.app.version,
        "build": actor.app.build,
    }


def _install_attributed(rng: random.Random, actor: Actor) -> Properties:
    return {
        "provider": rng.choice(("AppsFlyer", "Adjust", "Branch")),
        "campaign": {
            "source": rng.choice(("Meta Ads", "Google Ads", "TikTok Ads")),
            "name": "Summer Gear Install Push",
            "medium": "cpi",
            "content": "Trail runner carousel",
            "ad_creative": "ridgeline_carousel_v2",
            "ad_group": "US outdoor enthusiasts 25-44",
        },
    }


def _push_campaign(rng: random.Random) -> Properties:
    return {
        "name": "Order Shipped",
        "medium": "Push",
        "content": "Your Switchback order is on its way!",
        "source": rng.choice(("Braze", "Iterable", "OneSignal")),
    }


def _push_received(rng: random.Random, actor: Actor) -> Properties:
    return {"campaign": _push_campaign(rng)}


def _push_tapped(rng: random.Random, actor: Actor) -> Properties:
    return {"action": "Track Order", "campaign": _push_campaign(rng)}


def _push_bounced(rng: random.Random, actor: Actor) -> Properties:
    return {"action": "Unregistered device token", "campaign": _push_campaign(rng)}


def _deep_link(rng: random.Random, actor: Actor) -> Properties:
    return {
        "provider": rng.choice(("Branch", "AppsFlyer")),
        "url": "switchback://products/ridgeline-trail-runner?utm_source=instagram",
    }


# Email --------------------------------------------------------------------------------

_EMAIL_CAMPAIGNS = (
    ("cmp_summer_sale", "Summer Sale 2025", "Up to 30% off trail gear this week"),
    ("cmp_new_arrivals", "New Arrivals: Fall", "Just landed: the Fall 2025 collection"),
    ("cmp_abandoned_cart", "Abandoned Cart", "You left something in your cart"),
)


def _email(rng: random.Random) -> Properties:
    campaign_id, campaign_name, subject = rng.choice(_EMAIL_CAMPAIGNS)
    return {
        "email_id": f"em_{hex_id(rng, 16)}",
        "email_subject": subject,
        "campaign_id": campaign_id,
        "campaign_name": campaign_name,
    }


def _email_event(rng: random.Random, actor: Actor) -> Properties:
    return _email(rng)


def _email_link_clicked(rng: random.Random, actor: Actor) -> Properties:
    fields = _email(rng)
    fields.update(
        link_id=f"lnk_{hex_id(rng, 8)}",
        link_url=f"{STORE_URL}/collections/footwear?utm_source=email",
    )
    return fields


def _unsubscribed(rng: random.Random, actor: Actor) -> Properties:
    fields = _email(rng)
    fields.update(list_id="list_newsletter", list_name="Weekly Trail Newsletter")
    return fields


def _recipient(rng: random.Random, actor: Actor) -> dict[str, Any]:
    # Bounced and Delivered: the Spec's context is the intended recipient only.
    return {"traits": {"email": actor.person.email}}


def _reader(rng: random.Random, actor: Actor) -> dict[str, Any]:
    # Opened, Link Clicked, Marked as Spam, Unsubscribed: the recipient acted, so
    # the Spec adds the opening computer's IP and browser, user_agent in snake_case.
    return {
        "ip": ip_address(rng),
        "user_agent": rng.choice(BROWSERS).user_agent,
        "traits": {"email": actor.person.email},
    }


# Live Chat ----------------------------------------------------------------------------

_AGENTS = (("ag_1042", "Maya Brooks", "maya.b"), ("ag_2210", "Tomás Ruiz", "truiz"))


def _chat(rng: random.Random, duration: int) -> Properties:
    # All four events list the same six properties; message_id is the message
    # the event is about (the first one for Started, the last one for Ended).
    agent_id, agent_name, agent_username = rng.choice(_AGENTS)
    return {
        "agent_id": agent_id,
        "agent_name": agent_name,
        "agent_username": agent_username,
        "conversation_id": f"conv_{hex_id(rng, 12)}",
        "conversation_duration": duration,
        "message_id": f"msg_{hex_id(rng, 10)}",
    }


def _chat_started(rng: random.Random, actor: Actor) -> Properties:
    return _chat(rng, 0)


def _chat_message(rng: random.Random, actor: Actor) -> Properties:
    return _chat(rng, rng.randint(5, 600))


def _chat_ended(rng: random.Random, actor: Actor) -> Properties:
    return _chat(rng, rng.randint(45, 1200))


# B2B SaaS -----------------------------------------------------------------------------


def _account(rng: random.Random, actor: Actor) -> Properties:
    return {"account_name": actor.company.name}


def _signed_up(rng: random.Random, actor: Actor) -> Properties:
    person = actor.person
    return {
        "type": rng.choice(("organic", "invited", "google_sso")),
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email": person.email,
        "phone": person.phone,
        "username": person.username,
        "title": person.title,
    }


def _signed_in_or_out(rng: random.Random, actor: Actor) -> Properties:
    return {"username": actor.person.username}


def _invite_sent(rng: random.Random, actor: Actor) -> Properties:
    return {
        "invitee_email": "jordan.lee@example.com",
        "invitee_first_name": "Jordan",
        "invitee_last_name": "Lee",
        "invitee_role": rng.choice(("Admin", "Member", "Viewer")),
    }


def _account_added_user(rng: random.Random, actor: Actor) -> Properties:
    return {"role": rng.choice(("Admin", "Member", "Viewer"))}


def _account_context(rng: random.Random, actor: Actor) -> dict[str, Any]:
    # The B2B SaaS spec attributes every event to an account through context.groupId.
    return {"groupId": actor.company.id}


_TRIAL_DAYS = 14


def _trial(start_offset_days: int, rng: random.Random, actor: Actor) -> Properties:
    start = actor.now - timedelta(days=start_offset_days)
    return {
        "trial_start_date": format_timestamp(start),
        "trial_end_date": format_timestamp(start + timedelta(days=_TRIAL_DAYS)),
        "trial_plan_name": rng.choice(("Team Trial", "Business Trial")),
    }


def _trial_started(rng: random.Random, actor: Actor) -> Properties:
    return _trial(0, rng, actor)


def _trial_ended(rng: random.Random, actor: Actor) -> Properties:
    return _trial(_TRIAL_DAYS, rng, actor)


# A/B Testing --------------------------------------------------------------------------


def _experiment_viewed(rng: random.Random, actor: Actor) -> Properties:
    variation = rng.randint(0, 1)
    return {
        "experiment_id": f"exp_{new_uuid(rng).hex[:8]}",
        "experiment_name": "Checkout Button Color",
        "variation_id": str(variation),
        "variation_name": ("Control (green)", "Variant (orange)")[variation],
    }


_ALL = (
    Template("Products Searched", ECOMMERCE, _products_searched),
    Template("Product List Viewed", ECOMMERCE, _product_list_viewed),
    Template("Product List Filtered", ECOMMERCE, _product_list_filtered),
    Template("Promotion Viewed", ECOMMERCE, _promotion),
    Template("Promotion Clicked", ECOMMERCE, _promotion),
    Template("Product Clicked", ECOMMERCE, _product_clicked),
    Template("Product Viewed", ECOMMERCE, _product_viewed),
    Template("Product Added", ECOMMERCE, _product_added),
    Template("Product Removed", ECOMMERCE, _product_removed),
    Template("Cart Viewed", ECOMMERCE, _cart_viewed),
    Template("Checkout Started", ECOMMERCE, _checkout_started),
    Template("Checkout Step Viewed", ECOMMERCE, _checkout_step),
    Template("Checkout Step Completed", ECOMMERCE, _checkout_step),
    Template("Payment Info Entered", ECOMMERCE, _payment_info_entered),
    Template("Order Updated", ECOMMERCE, _order_updated),
    Template("Order Completed", ECOMMERCE, _order_completed),
    Template("Order Refunded", ECOMMERCE, _order_refunded),
    Template("Order Cancelled", ECOMMERCE, _order_updated),
    Template("Coupon Entered", ECOMMERCE, _coupon_entered),
    Template("Coupon Applied", ECOMMERCE, _coupon_with_discount),
    Template("Coupon Denied", ECOMMERCE, _coupon_denied),
    Template("Coupon Removed", ECOMMERCE, _coupon_with_discount),
    Template("Product Added to Wishlist", ECOMMERCE, _wishlist_product),
    Template("Product Removed from Wishlist", ECOMMERCE, _wishlist_product),
    Template(
        "Wishlist Product Added to Cart", ECOMMERCE, _wishlist_product_added_to_cart
    ),
    Template("Product Shared", ECOMMERCE, _product_shared),
    Template("Cart Shared", ECOMMERCE, _cart_shared),
    Template("Product Reviewed", ECOMMERCE, _product_reviewed),
    Template("Video Playback Started", VIDEO, _playback_started),
    Template("Video Playback Paused", VIDEO, _playback_event),
    Template("Video Playback Interrupted", VIDEO, _playback_interrupted),
    Template("Video Playback Buffer Started", VIDEO, _playback_event),
    Template("Video Playback Buffer Completed", VIDEO, _playback_event),
    Template("Video Playback Seek Started", VIDEO, _seek_started),
    Template("Video Playback Seek Completed", VIDEO, _seek_completed),
    Template("Video Playback Resumed", VIDEO, _playback_event),
    Template("Video Playback Completed", VIDEO, _playback_completed),
    Template("Video Playback Exited", VIDEO, _playback_event),
    Template("Video Content Started", VIDEO, _content_started),
    Template("Video Content Playing", VIDEO, _content_playing),
    Template("Video Content Completed", VIDEO, _content_completed),
    Template("Video Ad Started", VIDEO, _ad_started),
    Template("Video Ad Playing", VIDEO, _ad_playing),
    Template("Video Ad Completed", VIDEO, _ad_completed),
    Template("Video Quality Updated", VIDEO, _quality_updated),
    Template("Application Installed", MOBILE, _application_installed),
    Template("Application Opened", MOBILE, _application_opened),
    Template("Application Backgrounded", MOBILE, _no_properties),
    Template("Application Foregrounded", MOBILE, _no_properties),
    Template("Application Updated", MOBILE, _application_updated),
    Template("Application Uninstalled", MOBILE, _no_properties),
    Template("Application Crashed", MOBILE, _no_properties),
    Template("Install Attributed", MOBILE, _install_attributed),
    Template("Push Notification Received", MOBILE, _push_received),
    Template("Push Notification Tapped", MOBILE, _push_tapped),
    Template("Push Notification Bounced", MOBILE, _push_bounced),
    Template("Deep Link Opened", MOBILE, _deep_link),
    Template("Deep Link Clicked", MOBILE, _deep_link),
    Template("Email Bounced", EMAIL, _email_event, _recipient),
    Template("Email Delivered", EMAIL, _email_event, _recipient),
    Template("Email Link Clicked", EMAIL, _email_link_clicked, _reader),
    Template("Email Marked as Spam", EMAIL, _email_event, _reader),
    Template("Email Opened", EMAIL, _email_event, _reader),
    Template("Unsubscribed", EMAIL, _unsubscribed, _reader),
    Template("Live Chat Conversation Started", LIVE_CHAT, _chat_started),
    Template("Live Chat Conversation Ended", LIVE_CHAT, _chat_ended),
    Template("Live Chat Message Sent", LIVE_CHAT, _chat_message),
    Template("Live Chat Message Received", LIVE_CHAT, _chat_message),
    Template("Account Created", B2B_SAAS, _account, _account_context),
    Template("Account Deleted", B2B_SAAS, _account, _account_context),
    Template("Signed Up", B2B_SAAS, _signed_up, _account_context),
    Template("Signed In", B2B_SAAS, _signed_in_or_out, _account_context),
    Template("Signed Out", B2B_SAAS, _signed_in_or_out, _account_context),
    Template("Invite Sent", B2B_SAAS, _invite_sent, _account_context),
    Template("Account Added User", B2B_SAAS, _account_added_user, _account_context),
    # The Spec lists no property for Account Removed User, only context.groupId.
    Template("Account Removed User", B2B_SAAS, _no_properties, _account_context),
    Template("Trial Started", B2B_SAAS, _trial_started, _account_context),
    Template("Trial Ended", B2B_SAAS, _trial_ended, _account_context),
    Template("Experiment Viewed", AB_TESTING, _experiment_viewed),
)

TEMPLATES: dict[str, Template] = {template.name: template for template in _ALL}


def templates_by_category() -> list[tuple[str, list[str]]]:
    """The template names grouped by spec family, E-commerce v2 first, in spec order."""
    return [
        (category, [t.name for t in _ALL if t.category == category])
        for category in CATEGORIES
    ]
