"""Realistic, Spec-valid sample events: what each source's library sends, delivered.

A sample is built as its library builds the event (the context it collects, its
_metadata, its messageId and the way it writes times and missing ids; see
sandbox.spec.sources), then taken through normalise, as Segment's pipeline takes
it on its way to a partner.
"""

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
from sandbox.spec.constants import EVENT_TYPES
from sandbox.spec.normalisation import normalise
from sandbox.spec.sources import (
    BROWSER,
    LIBRARIES,
    MOBILE,
    NODE_VERSION,
    SERVER,
    SOURCES,
    epoch_ms,
    javascript_json,
    library_sent_at,
    library_timestamp,
    md5_hex,
)
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
NO_PAGE_CALL = (
    "{library} has no page call: an app sends screen events. Choose screen, "
    "or a browser or server source."
)

Event = dict[str, Any]


def sample_problem(
    event_type: str, *, source: str, template: str | None = None
) -> str | None:
    """Why sample_event can't make this event, or None when it can."""
    if event_type not in EVENT_TYPES:
        return UNKNOWN_EVENT_TYPE.format(value=event_type)
    if source not in SOURCES:
        return UNKNOWN_SOURCE.format(value=source)
    if template is not None:
        if template not in TEMPLATES:
            return UNKNOWN_TEMPLATE.format(value=template)
        if event_type != "track":
            return TEMPLATE_NEEDS_TRACK.format(template=template, event_type=event_type)
    library = LIBRARIES[source]
    if event_type == "page" and not library.has_page:
        return NO_PAGE_CALL.format(library=library.name)
    return None


def sample_event(
    event_type: str,
    *,
    source: str = "analytics.js",
    template: str | None = None,
    now: datetime | None = None,
    rng: random.Random | None = None,
) -> Event:
    """Build a sample event of the given type, as one of SOURCES would have sent it
    and Segment would deliver it at now.

    With a template, the event is the named semantic track event. The same rng seed
    and now give the same event. Raises ValueError (see sample_problem) for what
    the source can't send.
    """
    problem = sample_problem(event_type, source=source, template=template)
    if problem is not None:
        raise ValueError(problem)
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
        self.library = LIBRARIES[source]
        self.platform = self.library.platform
        self.actor: Actor = make_actor(rng, received)
        # Drawn once, on first use, so a page event's properties match context.page.
        self._page: dict[str, Any] | None = None

    def build(self, event_type: str, template_name: str | None) -> Event:
        original, sent = self._client_times()
        event: Event = self._identity(event_type, self._signed_in(event_type))
        event["type"] = event_type
        event.update(self._type_fields(event_type, template_name))
        context = self._context(event)
        if template_name is not None:
            template = TEMPLATES[template_name]
            for name, value in template.context(self.rng, self.actor).items():
                if name == "traits":
                    value = {**context.get("traits", {}), **value}
                context[name] = value
        event["context"] = context
        if self.source != "node-classic":
            # The classic Node library sends integrations only when given some.
            event["integrations"] = {}
        metadata = self._metadata()
        if metadata is not None:
            event["_metadata"] = metadata
        event["timestamp"] = library_timestamp(self.source, original)
        event["messageId"] = self._message_id(event, original)
        # Every library sends sentAt once per batch; Segment applies it to each event.
        event["sentAt"] = library_sent_at(self.source, sent)
        return dict(normalise(event, now=self.received))

    def _client_times(self) -> tuple[datetime, datetime]:
        rng = self.rng
        # Network latency plus a client clock running behind Segment's: devices by up
        # to two seconds, NTP-synced servers by a few milliseconds. Keeping the clock
        # behind keeps sentAt before receivedAt while the skew correction still shows.
        clock_lag = rng.randint(0, 40 if self.platform == SERVER else 2000)
        sent = self.received - _ms(rng.randint(20, 250) + clock_lag)
        original = sent - _ms(rng.randint(50, 900))
        if self.source == "server":
            # analytics-python's sentAt keeps Python's microseconds.
            sent += timedelta(microseconds=rng.randint(0, 999))
        return original, sent

    def _signed_in(self, event_type: str) -> bool:
        if event_type in ("identify", "alias"):
            return True
        if self.platform == SERVER:
            # Server code mostly acts for a known user; groups always.
            return event_type == "group" or self.rng.random() < 0.8
        return self.rng.random() < 0.6

    def _message_id(self, event: Event, original: datetime) -> str:
        message_uuid = str(new_uuid(self.rng))
        if self.platform == BROWSER:
            return f"ajs-next-{epoch_ms(original)}-{message_uuid}"
        if self.source == "node":
            return f"node-next-{epoch_ms(original)}-{message_uuid}"
        if self.source == "node-classic":
            # md5 of JSON.stringify(message) as it stands before the id is set.
            return f"node-{md5_hex(javascript_json(event))}-{message_uuid}"
        if self.source == "ios":
            # Swift's UUID().uuidString is upper-case.
            return message_uuid.upper()
        return message_uuid

    def _identity(self, event_type: str, signed_in: bool) -> Event:
        person = self.actor.person
        anonymous_id = str(new_uuid(self.rng))
        if self.platform == SERVER:
            # A server library sends the ids its caller gave it.
            if event_type == "alias":
                ids: Event = {"previousId": anonymous_id, "userId": person.user_id}
            elif signed_in:
                ids = {"userId": person.user_id}
            else:
                ids = {"anonymousId": anonymous_id}
            if self.source == "server":
                # analytics-python sends the ids it wasn't given as null.
                ids.setdefault("userId", None)
                ids.setdefault("anonymousId", None)
            return ids
        if self.source == "ios":
            anonymous_id = anonymous_id.upper()
        if event_type == "alias":
            # analytics-swift aliases from the current userId; analytics-kotlin and
            # analytics.js from the userId or, before identify, the anonymousId.
            previous = user_id(self.rng) if self.source == "ios" else anonymous_id
            return {
                "previousId": previous,
                "userId": person.user_id,
                "anonymousId": anonymous_id,
            }
        if signed_in:
            return {"userId": person.user_id, "anonymousId": anonymous_id}
        if self.platform == BROWSER:
            # analytics.js sends user.id(), null before identify.
            return {"userId": None, "anonymousId": anonymous_id}
        # analytics-swift leaves out a nil userId; analytics-kotlin drops a blank one.
        return {"anonymousId": anonymous_id}

    def _type_fields(self, event_type: str, template_name: str | None) -> Event:
        if event_type == "track":
            if template_name is None:
                return {"event": "Button Clicked", "properties": self._button()}
            template = TEMPLATES[template_name]
            properties = template.properties(self.rng, self.actor)
            return {
                "event": template.name,
                "properties": self._as_sdk_tracks(template.name, properties),
            }
        if event_type == "identify":
            return {"traits": self._user_traits()}
        if event_type == "group":
            return {"groupId": self.actor.company.id, "traits": self._group_traits()}
        if event_type == "page":
            return self._page_fields()
        if event_type == "screen":
            category, name = self.rng.choice(MOBILE_SCREENS)
            return {"name": name, "category": category, "properties": {}}
        return {}

    def _as_sdk_tracks(self, name: str, properties: Event) -> Event:
        """Application Opened as the mobile SDKs' lifecycle tracking sends it."""
        if name != "Application Opened" or self.platform != MOBILE:
            return properties
        from_background = properties["from_background"]
        if self.source == "ios":
            # On launch iOSLifecycleEvents sends all five; on returning, three.
            if from_background:
                names = ("from_background", "version", "build")
            else:
                names = tuple(properties)
            return {name: properties[name] for name in names}
        # AndroidLifecyclePlugin: version and build on the first launch only; url
        # and referring_application are collected on iOS only (the Spec says so).
        if from_background:
            return {"from_background": True}
        return {
            "version": properties["version"],
            "build": properties["build"],
            "from_background": False,
        }

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
        location = page["location"]
        if self.platform == BROWSER:
            # analytics.js puts the page's context in properties, and the category
            # at the top level and in properties.
            properties = {"name": page["name"], "category": page["category"]}
            properties.update(location)
        else:
            # A server library sends the properties its caller passes;
            # @segment/analytics-node copies the category into them.
            properties = dict(location)
            if self.source == "node":
                properties["category"] = page["category"]
        return {
            "name": page["name"],
            "category": page["category"],
            "properties": properties,
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

    def _library(self) -> Event:
        return {"name": self.library.name, "version": self.library.version}

    def _context(self, event: Event) -> Event:
        if self.platform == SERVER:
            # Server libraries collect nothing about a device; only the library itself.
            return {"library": self._library()}
        if self.platform == BROWSER:
            context = self._browser_context()
        elif self.source == "ios":
            context = self._swift_context()
        else:
            context = self._kotlin_context(event["anonymousId"])
        # Not the library's: Segment adds the address a client-side event came from.
        context["ip"] = ip_address(self.rng)
        return context

    def _browser_context(self) -> Event:
        """What analytics.js's page context and environment enrichment collect."""
        rng = self.rng
        page = self._web_page()
        browser = rng.choice(BROWSERS)
        context: Event = {
            "page": dict(page["location"]),
            "userAgent": browser.user_agent,
        }
        if browser.brand:
            version = browser.user_agent.split("Chrome/")[1].split(".")[0]
            context["userAgentData"] = {
                "brands": [
                    {"brand": "Chromium", "version": version},
                    {"brand": browser.brand, "version": version},
                    {"brand": "Not_A Brand", "version": "99"},
                ],
                "mobile": browser.mobile,
                "platform": browser.platform,
            }
        context["locale"] = self.actor.place.locale
        context["library"] = self._library()
        if page["campaign"] is not None:
            context["campaign"] = dict(page["campaign"])
        context["timezone"] = self.actor.place.timezone
        return context

    def _app(self) -> Event:
        app = self.actor.app
        return {
            "name": app.name,
            "version": app.version,
            "build": app.build,
            "namespace": app.namespace,
        }

    def _network(self) -> Event:
        wifi = self.rng.random() < 0.6
        # No carrier: neither mobile SDK collects one.
        return {"bluetooth": False, "cellular": not wifi, "wifi": wifi}

    def _swift_context(self) -> Event:
        """analytics-swift's Context plugin: no carrier, advertising id or traits."""
        rng = self.rng
        handset: Handset = rng.choice(IPHONES)
        os_version = rng.choice(handset.os_versions)
        return {
            "library": self._library(),
            "app": self._app(),
            "device": {
                "manufacturer": handset.manufacturer,
                "type": "ios",
                "model": handset.model,
                "name": handset.name,
                # identifierForVendor.uuidString
                "id": str(new_uuid(rng)).upper(),
            },
            "os": {"name": "iOS", "version": os_version},
            "screen": {"width": handset.width, "height": handset.height},
            "locale": self.actor.place.locale,
            "timezone": self.actor.place.timezone,
            "network": self._network(),
            # WebKit's user agent, as the SDK's UserAgent builds it.
            "userAgent": (
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {os_version.replace('.', '_')} "
                "like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
            ),
            "instanceId": str(new_uuid(rng)).upper(),
        }

    def _kotlin_context(self, anonymous_id: str) -> Event:
        """analytics-kotlin's AndroidContextPlugin and ContextPlugin."""
        rng = self.rng
        handset: Handset = rng.choice(ANDROID_PHONES)
        os_version = rng.choice(handset.os_versions)
        app = self._app()
        return {
            "app": {
                "name": app["name"],
                "version": app["version"],
                "namespace": app["namespace"],
                "build": app["build"],
            },
            "device": {
                # Without collectDeviceId (off by default) the id is the anonymousId.
                "id": anonymous_id,
                "manufacturer": handset.manufacturer,
                "model": handset.model,
                "name": handset.name,
                "type": "android",
            },
            "os": {"name": "Android", "version": os_version},
            "screen": {
                "density": handset.density,
                "height": handset.height,
                "width": handset.width,
            },
            "network": self._network(),
            "locale": self.actor.place.locale,
            # The system's http.agent.
            "userAgent": (
                f"Dalvik/2.1.0 (Linux; U; Android {os_version}; {handset.model} "
                f"Build/{handset.build_id})"
            ),
            "timezone": self.actor.place.timezone,
            "library": self._library(),
            "instanceId": str(new_uuid(rng)),
        }

    def _metadata(self) -> Event | None:
        if self.platform == BROWSER:
            # Segment.io is the only destination: the bundle holds no other.
            return {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []}
        if self.platform == MOBILE:
            # DestinationMetadataPlugin leaves Segment.io out of bundled.
            return {"bundled": [], "unbundled": [], "bundledIds": []}
        if self.source == "node":
            return {"nodeVersion": f"v{NODE_VERSION}", "jsRuntime": "node"}
        if self.source == "node-classic":
            return {"nodeVersion": NODE_VERSION}
        return None


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
