"""analytics.js (Segment's @segment/analytics-next) pointed at the sandbox.

The library, loaded with the sandbox as its CDN, asks for its source's settings
at `<cdnURL>/v1/projects/<writeKey>/settings` and loads its lazy bundles from
`<cdnURL>/analytics-next/bundles/`; the settings send its events to this
sandbox's tracking API (segment-reference.md section 5.7).
"""

from pathlib import Path

from django.conf import settings

ANALYTICS_NEXT_VERSION = "1.84.3"
BUNDLES_DIR = Path(settings.BASE_DIR) / "static" / "vendor" / "analytics-next"
# The library's files by name: nothing else is served from that path.
BUNDLES = frozenset(
    path.name for path in BUNDLES_DIR.glob("*.js") if path.name != "index.js"
)
# Segment's CDN answers one version of its browser integration settings.
SEGMENT_IO_VERSION = "4.4.7"


def settings_document(*, write_key: str, api_host: str, protocol: str) -> dict:
    """The settings Segment's CDN serves a browser source, with the Segment.io
    integration sending to `protocol://api_host/<letter>` (api_host has no
    scheme: analytics.js adds `protocol`).

    Only "Segment.io" is listed: with more integrations analytics.js would load
    device-mode destinations from a CDN. Metrics are off (sampleRate 0), so the
    page sends only the calls it makes; /v1/m is answered all the same.
    """
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": api_host,
                "protocol": protocol,
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
                "maybeBundledConfigIds": {},
                "versionSettings": {
                    "version": SEGMENT_IO_VERSION,
                    "componentTypes": ["browser"],
                },
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True, "integrations": {}}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "edgeFunction": {},
        "analyticsNextEnabled": True,
        "middlewareSettings": {},
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }
