"""Realistic, Spec-valid sample events, shaped as Segment delivers them to partners."""

import random
import string
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sandbox.spec.catalogue import (
    ANDROID_PHONES,
    BROWSERS,
    CAMPAIGNS,
    IPHONES,
    MOBILE_SCREENS,
    REFERRERS,
    STORE_URL,
    WEB_PAGES,
    Actor,
    Handset,
    ip_address,
    make_actor,
    new_uuid,
    user_id,
)
from sandbox.spec.constants import EVENT_TYPES, SOURCES
from sandbox.spec.templates import TEMPLATES
from sandbox.spec.timestamps import as_utc, format_go_time, format_timestamp

UNKNOWN_EVENT_TYPE = (
    "Unknown event type {value!r}. Use one of " + ", ".join(EVENT_TYPES) + "."
)
UNKNOWN_SOURCE = "Unknown source {value!r}. Use one of " + ", ".join(SOURCES) + "."
UNKNOWN_TEMPLATE = (
    "Unknown template {value!r}. Templates are Segment's semantic events, "
    "such as 'Order Completed'."
)
TEMPLATE_NEEDS_TRACK = (
    "Template {template!r} is a track event, so it can't be sent as {event_type!r}."
)

ANALYTICS_JS_LIBRARY = {"name": "analytics.js", "version": "npm:next-1.84.1"}
SWIFT_LIBRARY = {"name": "analytics-swift", "version": "1.7.3"}
KOTLIN_LIBRARY = {"name": "analytics-kotlin", "version": "1.19.2"}
PYTHON_LIBRARY = {"name": "analytics-python", "version": "2.3.4"}

_CHANNELS = {"analytics.js": "browser", "ios": "mobile", "android": "mobile"}
# The zero UUID is what iOS reports as the IDFA when the user hasn't allowed tracking.
_NO_IDFA = "00000000-0000-0000-0000-000000000000"

Event = dict[str, Any]


def sample_event(
    event_type: str,
    *,
    source: str = "analytics.js",
    template: str | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Event:
    """Build a sample event of the given type, as one of SOURCES would have sent it.

    With a template, the event is the named semantic track event. The same rng seed
    and now give the same event.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(UNKNOWN_EVENT_TYPE.format(value=event_type))
    if source not in SOURCES:
        raise ValueError(UNKNOWN_SOURCE.format(value=source))
    if template is not None:
        if template not in TEMPLATES:
            raise ValueError(UNKNOWN_TEMPLATE.format(value=template))
        if event_type != "track":
            raise ValueError(
                TEMPLATE_NEEDS_TRACK.format(template=template, event_type=event_type)
            )
    rng = rng if rng is not None else random.Random()
    received = _whole_milliseconds(now if now is not None else datetime.now(UTC))
    if event_type == "delete":
        return _delete_event(rng, received)
    return _Sample(rng, received, source).build(event_type, template)


def _whole_milliseconds(moment: datetime) -> datetime:
    # Segment's timestamps carry milliseconds; dropping the rest keeps the
    # timestamp formula exact on the formatted strings.
    moment = as_utc(moment)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _ms(milliseconds: int) -> timedelta:
    return timedelta(milliseconds=milliseconds)


class _Sample:
    """One sample being built: the source, the actor and the shared random stream."""

    def __init__(self, rng: random.Random, received: datetime, source: str) -> None:
        self.rng = rng
        self.received = received
        self.source = source
        self.actor: Actor = make_actor(rng, received)
        # Drawn once, on first use, so a page event's properties match context.page.
        self._page: dict[str, Any] | None = None

    def build(self, event_type: str, template_name: str | None) -> Event:
        rng = self.rng
        times = self._timestamps()
        signed_in = event_type in ("identify", "alias") or rng.random() < 0.6
        if self.source == "server":
            signed_in = True
        event: Event = {"type": event_type}
        event.update(self._type_fields(event_type, template_name))
        event.update(self._identity(event_type, signed_in))
        event["context"] = self._context(event_type, signed_in, event)
        if template_name is not None and TEMPLATES[template_name].group_context:
            event["context"]["groupId"] = self.actor.company.id
        event["integrations"] = {}
        event["messageId"] = self._message_id(times["originalTimestamp"])
        event["channel"] = _CHANNELS.get(self.source, "server")
        event.update({name: format_timestamp(moment) for name, moment in times.items()})
        event["version"] = 2
        if self.source == "analytics.js":
            event["_metadata"] = {
                "bundled": ["Segment.io"],
                "unbundled": [],
                "bundledIds": [],
            }
        return event

    def _timestamps(self) -> dict[str, datetime]:
        rng = self.rng
        # Network latency plus a client clock running behind Segment's: devices by up
        # to two seconds, NTP-synced servers by a few milliseconds. Keeping the clock
        # behind keeps sentAt before receivedAt while the skew correction still shows.
        clock_lag = rng.randint(0, 40 if self.source == "server" else 2000)
        sent = self.received - _ms(rng.randint(20, 250) + clock_lag)
        original = sent - _ms(rng.randint(50, 900))
        return {
            "originalTimestamp": original,
            "sentAt": sent,
            "receivedAt": self.received,
            "timestamp": self.received - (sent - original),
        }

    def _message_id(self, original: datetime) -> str:
        message_uuid = new_uuid(self.rng)
        if self.source == "analytics.js":
            epoch_ms = int(original.timestamp() * 1000)
            return f"ajs-next-{epoch_ms}-{message_uuid}"
        if self.source == "ios":
            # Swift's UUID().uuidString is upper-case.
            return str(message_uuid).upper()
        return str(message_uuid)

    def _identity(self, event_type: str, signed_in: bool) -> Event:
        person = self.actor.person
        if self.source == "server":
            if event_type == "alias":
                return {"previousId": person.email, "userId": person.user_id}
            # analytics-python sends the ids it wasn't given as null.
            return {"userId": person.user_id, "anonymousId": None}
        anonymous_id = str(new_uuid(self.rng))
        if self.source == "ios":
            anonymous_id = anonymous_id.upper()
        if event_type == "alias":
            return {
                "previousId": anonymous_id,
                "userId": person.user_id,
                "anonymousId": anonymous_id,
            }
        if signed_in:
            return {"userId": person.user_id, "anonymousId": anonymous_id}
        # Before identify, analytics.js sends userId null and analytics-kotlin "";
        # analytics-swift leaves it out.
        missing = {"analytics.js": {"userId": None}, "android": {"userId": ""}}
        return missing.get(self.source, {}) | {"anonymousId": anonymous_id}

    def _type_fields(self, event_type: str, template_name: str | None) -> Event:
        if event_type == "track":
            if template_name is None:
                return {"event": "Button Clicked", "properties": self._button()}
            template = TEMPLATES[template_name]
            return {
                "event": template.name,
                "properties": template.properties(self.rng, self.actor),
            }
        if event_type == "identify":
            return {"traits": self._user_traits()}
        if event_type == "group":
            return {"groupId": self.actor.company.id, "traits": self._group_traits()}
        if event_type == "page":
            return self._page_fields()
        if event_type == "screen":
            category, name = self.rng.choice(MOBILE_SCREENS)
            return {"name": name, "category": category, "properties": {"name": name}}
        return {}

    def _button(self) -> Event:
        label, location = self.rng.choice(
            (
                ("Shop Now", "home_hero"),
                ("Add to Cart", "product_detail"),
                ("Sign Up", "footer"),
            )
        )
        return {
            "button_text": label,
            "button_id": label.lower().replace(" ", "_"),
            "location": location,
        }

    def _user_traits(self) -> Event:
        person, company = self.actor.person, self.actor.company
        return {
            "email": person.email,
            "firstName": person.first_name,
            "lastName": person.last_name,
            "name": person.name,
            "phone": person.phone,
            "title": person.title,
            "username": person.username,
            "createdAt": person.created_at,
            "address": dict(person.address),
            "company": {
                "name": company.name,
                "id": company.id,
                "industry": company.industry,
                "employee_count": company.employees,
                "plan": company.plan,
            },
        }

    def _group_traits(self) -> Event:
        company = self.actor.company
        return {
            "name": company.name,
            "industry": company.industry,
            "employees": company.employees,
            "plan": company.plan,
            "website": company.website,
            "createdAt": company.created_at,
        }

    def _page_fields(self) -> Event:
        page = self._web_page()
        if self.source == "analytics.js":
            # analytics.js puts a page's category at the top level and in properties.
            properties = {"name": page["name"], "category": page["category"]}
            properties.update(page["location"])
            return {
                "name": page["name"],
                "category": page["category"],
                "properties": properties,
            }
        if self.source == "server":
            location = page["location"]
            properties = {
                "name": page["name"],
                "path": location["path"],
                "url": location["url"],
                "title": location["title"],
            }
            return {
                "name": page["name"],
                "category": page["category"],
                "properties": properties,
            }
        return {
            "name": page["name"],
            "category": page["category"],
            "properties": {"name": page["name"]},
        }

    def _web_page(self) -> dict[str, Any]:
        rng = self.rng
        if self._page is None:
            page = rng.choice(WEB_PAGES)
            campaign = dict(rng.choice(CAMPAIGNS)) if rng.random() < 0.3 else None
            search = ""
            if campaign is not None:
                search = "?" + urlencode(
                    {f"utm_{key}": value for key, value in campaign.items()}
                )
            self._page = {
                "name": page.name,
                "category": page.category,
                "campaign": campaign,
                "location": {
                    "path": page.path,
                    "referrer": rng.choice(REFERRERS),
                    "search": search,
                    "title": page.title,
                    "url": f"{STORE_URL}{page.path}{search}",
                },
            }
        return self._page

    def _context(self, event_type: str, signed_in: bool, event: Event) -> Event:
        if self.source == "server":
            # Server libraries collect nothing about a device; only the library itself.
            return {"library": dict(PYTHON_LIBRARY)}
        if self.source == "analytics.js":
            return self._browser_context()
        return self._mobile_context(event_type, signed_in, event)

    def _browser_context(self) -> Event:
        rng = self.rng
        page = self._web_page()
        browser = rng.choice(BROWSERS)
        version = browser.user_agent.split("Chrome/")[1].split(".")[0]
        context: Event = {
            "ip": ip_address(rng),
            "library": dict(ANALYTICS_JS_LIBRARY),
            "locale": self.actor.place.locale,
            "page": dict(page["location"]),
            "timezone": self.actor.place.timezone,
            "userAgent": browser.user_agent,
            "userAgentData": {
                "brands": [
                    {"brand": "Chromium", "version": version},
                    {"brand": browser.brand, "version": version},
                    {"brand": "Not_A Brand", "version": "99"},
                ],
                "mobile": browser.mobile,
                "platform": browser.platform,
            },
        }
        if page["campaign"] is not None:
            context["campaign"] = dict(page["campaign"])
        return context

    def _mobile_context(self, event_type: str, signed_in: bool, event: Event) -> Event:
        rng = self.rng
        actor = self.actor
        ios = self.source == "ios"
        handset: Handset = rng.choice(IPHONES if ios else ANDROID_PHONES)
        tracking = rng.random() < 0.3
        advertising_id = str(new_uuid(rng))
        if ios:
            advertising_id = advertising_id.upper() if tracking else _NO_IDFA
        device_id = str(new_uuid(rng))
        wifi = rng.random() < 0.6
        context: Event = {
            "app": {
                "name": actor.app.name,
                "version": actor.app.version,
                "build": actor.app.build,
                "namespace": actor.app.namespace,
            },
            "device": {
                "id": device_id.upper() if ios else device_id,
                "advertisingId": advertising_id,
                "adTrackingEnabled": tracking,
                "manufacturer": handset.manufacturer,
                "model": handset.model,
                "name": handset.name,
                "type": "ios" if ios else "android",
            },
            "instanceId": str(new_uuid(rng)),
            "ip": ip_address(rng),
            "library": dict(SWIFT_LIBRARY if ios else KOTLIN_LIBRARY),
            "locale": actor.place.locale,
            "network": {
                "bluetooth": False,
                "carrier": actor.place.carrier,
                "cellular": not wifi,
                "wifi": wifi,
            },
            "os": {
                "name": "iOS" if ios else "Android",
                "version": rng.choice(handset.os_versions),
            },
            "screen": {
                "width": handset.width,
                "height": handset.height,
                "density": handset.density,
            },
            "timezone": actor.place.timezone,
            "traits": self._context_traits(event_type, signed_in, event),
        }
        if not ios:
            os_version = context["os"]["version"]
            context["userAgent"] = (
                f"Dalvik/2.1.0 (Linux; U; Android {os_version}; {handset.model} "
                "Build/AP2A.240805.005)"
            )
        return context

    def _context_traits(self, event_type: str, signed_in: bool, event: Event) -> Event:
        # Mobile SDKs copy the traits stored by the last identify into every event.
        if event_type == "identify":
            return dict(event["traits"])
        if signed_in:
            person = self.actor.person
            return {"email": person.email, "name": person.name}
        return {}


def _delete_event(rng: random.Random, received: datetime) -> Event:
    """A user-deletion message in the shape of partners/spec.md (section 8)."""
    project_id = "".join(
        rng.choice(string.ascii_uppercase + string.digits) for _ in range(10)
    )
    regulation = rng.randint(1_000_000, 9_999_999)
    job = rng.randint(1, 4)
    # The regulation was requested some time before Segment sent the message.
    requested = (received - timedelta(seconds=rng.randint(300, 8 * 3600))).replace(
        microsecond=0
    )
    # Both documented shapes exist: empty arrays (build guide) and nulls (partner spec).
    empty_arrays = rng.random() < 0.5
    original = format_go_time(
        received,
        nanosecond=rng.randint(0, 999_999),
        monotonic=rng.randint(60_000_000_000, 200_000_000_000_000) / 1e9,
    )
    return {
        "type": "delete",
        "channel": "server",
        "messageId": f"delete-reg-{regulation}::job-{job}-{project_id}",
        "projectId": project_id,
        "userId": user_id(rng),
        "context": [] if empty_arrays else None,
        "integrations": [] if empty_arrays else None,
        # Segment's delete messages carry Go's time.String() here and skip the skew
        # correction: timestamp equals receivedAt even though sentAt is earlier.
        "originalTimestamp": original,
        "sentAt": format_timestamp(requested),
        "receivedAt": format_timestamp(received),
        "timestamp": format_timestamp(received),
    }
