"""Made-up but realistic people, companies, products and devices for sample events."""

import hashlib
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sandbox.spec.timestamps import format_timestamp

# Every sample describes one fictional business, so events read like a real stream.
STORE_NAME = "Switchback Outfitters"
STORE_URL = "https://switchback.example"
CDN_URL = "https://cdn.switchback.example"
APP_NAME = "Switchback"
APP_NAMESPACE = "com.switchback.outfitters"


def new_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID drawn from rng, so seeded samples repeat exactly."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def hex_id(rng: random.Random, length: int) -> str:
    """A lower-case hexadecimal id like the ObjectIds in Segment's examples."""
    return f"{rng.getrandbits(length * 4):0{length}x}"


def money(cents: int) -> float:
    """A decimal dollar amount, as the Spec's revenue and price properties are."""
    return cents / 100


@dataclass(frozen=True)
class Place:
    city: str
    state: str
    postal_code: str
    country: str
    street: str
    locale: str
    timezone: str
    phone_prefix: str
    carrier: str
    tax_rate: float

    def address(self, rng: random.Random) -> dict[str, str]:
        return {
            "street": self.street.format(number=rng.randint(1, 480)),
            "city": self.city,
            "state": self.state,
            "postalCode": self.postal_code,
            "country": self.country,
        }


PLACES = (
    Place(
        "San Francisco", "CA", "94107", "USA", "{number} Townsend St", "en-US",
        "America/Los_Angeles", "+1 415-555-01", "Verizon", 0.08625,
    ),
    Place(
        "New York", "NY", "10012", "USA", "{number} Mercer St", "en-US",
        "America/New_York", "+1 212-555-01", "T-Mobile", 0.08875,
    ),
    Place(
        "Austin", "TX", "78701", "USA", "{number} Congress Ave", "en-US",
        "America/Chicago", "+1 512-555-01", "AT&T", 0.0825,
    ),
    Place(
        "Denver", "CO", "80202", "USA", "{number} Larimer St", "en-US",
        "America/Denver", "+1 303-555-01", "Verizon", 0.0881,
    ),
    Place(
        "London", "England", "EC1V 9HX", "United Kingdom", "{number} Old Street",
        "en-GB", "Europe/London", "+44 20 7946 09", "Vodafone UK", 0.2,
    ),
    Place(
        "Berlin", "Berlin", "10115", "Germany", "Torstraße {number}", "de-DE",
        "Europe/Berlin", "+49 30 5557 01", "Telekom.de", 0.19,
    ),
    Place(
        "Toronto", "ON", "M5V 2T6", "Canada", "{number} King St W", "en-CA",
        "America/Toronto", "+1 416-555-01", "Rogers", 0.13,
    ),
)  # fmt: skip

FIRST_NAMES = (
    "Ava", "Mateo", "Priya", "Liam", "Sofia", "Kenji", "Amara", "Noah", "Elena",
    "Omar", "Hannah", "Diego", "Mei", "Lucas", "Zara", "Felix",
)  # fmt: skip
LAST_NAMES = (
    "Garcia", "Okafor", "Patel", "Nguyen", "Schmidt", "Rossi", "Kim", "Johnson",
    "Silva", "Haddad", "Novak", "Tanaka", "Murphy", "Kowalski", "Lindqvist",
)  # fmt: skip
JOB_TITLES = (
    "Product Manager", "Software Engineer", "Head of Growth", "Data Analyst",
    "Marketing Director", "Customer Success Lead", "VP of Engineering",
)  # fmt: skip


@dataclass(frozen=True)
class Company:
    id: str
    name: str
    industry: str
    employees: int
    plan: str
    website: str
    created_at: str


_COMPANIES = (
    ("Northwind Traders", "Retail", 240, "Business", "northwind.example"),
    ("Contoso Health", "Healthcare", 1800, "Enterprise", "contoso-health.example"),
    ("Fabrikam Robotics", "Manufacturing", 560, "Enterprise", "fabrikam.example"),
    ("Globex Logistics", "Transportation", 95, "Team", "globex.example"),
    ("Initech Software", "Technology", 38, "Startup", "initech.example"),
    ("Tailspin Travel", "Travel", 410, "Business", "tailspin.example"),
)


@dataclass(frozen=True)
class Person:
    user_id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    username: str
    title: str
    created_at: str
    address: dict

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True)
class App:
    name: str
    version: str
    build: str
    previous_version: str
    previous_build: str
    namespace: str = APP_NAMESPACE


@dataclass(frozen=True)
class Actor:
    """Who and where a sample event is about; templates read it to stay consistent."""

    person: Person
    company: Company
    place: Place
    app: App
    now: datetime


def user_id(rng: random.Random) -> str:
    """A database user id shaped like the ones in Segment's examples (97980cfea0067)."""
    return hex_id(rng, 13)


def make_actor(rng: random.Random, now: datetime) -> Actor:
    """Draw a person, their employer, their city and the app they use."""
    place = rng.choice(PLACES)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    signed_up = now - timedelta(
        days=rng.randint(30, 900), seconds=rng.randint(0, 86399)
    )
    person = Person(
        user_id=user_id(rng),
        first_name=first,
        last_name=last,
        email=f"{first}.{last}@example.com".lower(),
        phone=f"{place.phone_prefix}{rng.randint(0, 99):02d}",
        username=f"{first}{last[0]}{rng.randint(1, 99)}".lower(),
        title=rng.choice(JOB_TITLES),
        created_at=format_timestamp(signed_up),
        address=place.address(rng),
    )
    name, industry, employees, plan, domain = rng.choice(_COMPANIES)
    founded = signed_up - timedelta(days=rng.randint(1, 400))
    company = Company(
        id=hex_id(rng, 24),
        name=name,
        industry=industry,
        employees=employees,
        plan=plan,
        website=f"https://www.{domain}",
        created_at=format_timestamp(founded),
    )
    minor, patch = rng.randint(8, 14), rng.randint(0, 4)
    app = App(
        name=APP_NAME,
        version=f"4.{minor}.{patch}",
        build=f"4{minor:02d}{patch}",
        previous_version=f"4.{minor - 1}.2",
        previous_build=f"4{minor - 1:02d}2",
    )
    return Actor(person=person, company=company, place=place, app=app, now=now)


@dataclass(frozen=True)
class Product:
    sku: str
    category: str
    name: str
    brand: str
    variant: str
    price_cents: int

    @property
    def product_id(self) -> str:
        # Stable across samples so a partner sees the same product under one id.
        digest = hashlib.md5(self.sku.encode(), usedforsecurity=False).hexdigest()
        return digest[:24]

    @property
    def slug(self) -> str:
        cleaned = "".join(c if c.isalnum() else " " for c in self.name.lower())
        return "-".join(cleaned.split())

    @property
    def url(self) -> str:
        return f"{STORE_URL}/products/{self.slug}"

    @property
    def image_url(self) -> str:
        return f"{CDN_URL}/images/{self.sku.lower()}.jpg"


PRODUCTS = (
    Product("SB-1001", "Footwear", "Ridgeline Trail Runner", "Switchback", "Slate / 10",
            12900),
    Product("SB-1002", "Footwear", "Summit Mid Hiking Boot", "Switchback", "Brown / 9",
            17900),
    Product("SB-2001", "Outerwear", "Stormshell Rain Jacket", "Northpeak", "Blue / M",
            14900),
    Product("SB-2002", "Outerwear", "Featherlite Down Vest", "Northpeak", "Black / L",
            8900),
    Product("SB-3001", "Packs", "Daybreak 24L Backpack", "Switchback", "Forest", 9500),
    Product("SB-3002", "Packs", "Hydra 2L Reservoir", "Aquaflow", "Clear", 3450),
    Product("SB-4001", "Camping", "Alpine 2P Tent", "Northpeak", "Orange", 32900),
    Product("SB-4002", "Camping", "Glow Camp Lantern", "Lumen", "Green", 2999),
    Product("SB-5001", "Accessories", "Merino Hiking Socks 3-Pack", "Woolwise",
            "Grey / M", 2400),
    Product("SB-5002", "Accessories", "Carbon Trekking Poles", "Switchback", "Pair",
            7900),
)  # fmt: skip

PRODUCT_CATEGORIES = tuple(dict.fromkeys(product.category for product in PRODUCTS))


@dataclass(frozen=True)
class Coupon:
    id: str
    name: str
    code: str
    percent_off: int


COUPONS = (
    Coupon("summer_sale_2025", "Summer Sale 2025", "SUMMER15", 15),
    Coupon("welcome_10", "Welcome 10% Off", "WELCOME10", 10),
    Coupon("trail_club_20", "Trail Club Members 20%", "TRAILCLUB20", 20),
)

SEARCH_QUERIES = (
    "waterproof hiking boots",
    "trail running shoes",
    "2 person tent",
    "rain jacket women",
    "merino socks",
)


@dataclass(frozen=True)
class WebPage:
    category: str
    name: str
    path: str
    title: str


WEB_PAGES = (
    WebPage("Home", "Home", "/", STORE_NAME),
    WebPage("Collections", "Footwear", "/collections/footwear",
            f"Footwear | {STORE_NAME}"),
    WebPage("Products", "Stormshell Rain Jacket", "/products/stormshell-rain-jacket",
            f"Stormshell Rain Jacket | {STORE_NAME}"),
    WebPage("Blog", "How to Choose Hiking Boots", "/blog/how-to-choose-hiking-boots",
            f"How to Choose Hiking Boots | {STORE_NAME} Journal"),
    WebPage("Checkout", "Cart", "/cart", f"Your Cart | {STORE_NAME}"),
    WebPage("Membership", "Trail Club", "/trail-club",
            f"Trail Club Membership | {STORE_NAME}"),
)  # fmt: skip

REFERRERS = (
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://www.instagram.com/",
    f"{STORE_URL}/",
    "",
)

CAMPAIGNS = (
    {"name": "summer_sale", "source": "newsletter", "medium": "email",
     "content": "hero_banner"},
    {"name": "brand_search", "source": "google", "medium": "cpc",
     "term": "trail running shoes", "content": "ad_variant_b"},
    {"name": "spring_launch", "source": "instagram", "medium": "social",
     "content": "story_swipe_up"},
)  # fmt: skip

MOBILE_SCREENS = (
    ("Shop", "Home Feed"),
    ("Shop", "Product Detail"),
    ("Shop", "Search Results"),
    ("Checkout", "Cart"),
    ("Account", "Order History"),
)


@dataclass(frozen=True)
class Browser:
    user_agent: str
    # Chromium browsers answer navigator.userAgentData, which analytics.js sends as
    # context.userAgentData; Safari and Firefox have none (brand "").
    brand: str
    platform: str
    mobile: bool


_CHROME = "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0"
BROWSERS = (
    Browser(f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) {_CHROME} Safari/537.36",
            "Google Chrome", "macOS", False),
    Browser(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_CHROME} Safari/537.36",
            "Google Chrome", "Windows", False),
    Browser(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) {_CHROME} Safari/537.36 "
            "Edg/142.0.0.0", "Microsoft Edge", "Windows", False),
    Browser(f"Mozilla/5.0 (Linux; Android 10; K) {_CHROME} Mobile Safari/537.36",
            "Google Chrome", "Android", True),
    Browser("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/18.3 Safari/605.1.15", "", "macOS", False),
    Browser("Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) "
            "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 "
            "Safari/604.1", "", "iOS", True),
)  # fmt: skip


@dataclass(frozen=True)
class Handset:
    manufacturer: str
    model: str
    name: str
    os_versions: tuple[str, ...]
    # Points on iOS (UIScreen.main.bounds), pixels on Android (displayMetrics).
    width: int
    height: int
    density: float
    # Android's Build.ID, which the system's http.agent (context.userAgent) names.
    build_id: str = ""


IPHONES = (
    Handset("Apple", "iPhone17,2", "iPhone", ("18.1", "18.3.2"), 440, 956, 3),
    Handset("Apple", "iPhone16,1", "iPhone", ("17.6.1", "18.1"), 393, 852, 3),
    Handset("Apple", "iPhone14,5", "iPhone", ("17.5", "18.0.1"), 390, 844, 3),
)
ANDROID_PHONES = (
    Handset("Google", "Pixel 8", "shiba", ("14", "15"), 1080, 2400, 2.625,
            "AP2A.240805.005"),
    Handset("Google", "Pixel 7a", "lynx", ("14",), 1080, 2400, 2.625,
            "UQ1A.240205.004"),
    Handset("samsung", "SM-S921U", "e1q", ("14", "15"), 1080, 2340, 3.0,
            "UP1A.231005.007"),
)  # fmt: skip

# Addresses from ISP blocks that are plausible for consumers, never private ranges.
_IP_PREFIXES = ("73.158", "98.207", "24.5", "86.142", "92.40", "174.63")


def ip_address(rng: random.Random) -> str:
    return f"{rng.choice(_IP_PREFIXES)}.{rng.randint(1, 254)}.{rng.randint(1, 254)}"
