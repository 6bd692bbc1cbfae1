"""Which IANA zone a city or zone name people type stands for.

One table for the time tool (which resolves what the model passes) and the demo
model (which turns a city in a message into the tool's argument).
"""

from __future__ import annotations

import functools
import zoneinfo

# Names people type that are not (the last part of) an IANA zone name.
CITY_ZONES = {
    "beijing": "Asia/Shanghai",
    "boston": "America/New_York",
    "delhi": "Asia/Kolkata",
    "new delhi": "Asia/Kolkata",
    "mumbai": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata",
    "washington": "America/New_York",
    "miami": "America/New_York",
    "san francisco": "America/Los_Angeles",
    "seattle": "America/Los_Angeles",
    "dallas": "America/Chicago",
    "houston": "America/Chicago",
    "munich": "Europe/Berlin",
    "barcelona": "Europe/Madrid",
    "milan": "Europe/Rome",
    "osaka": "Asia/Tokyo",
    "kyoto": "Asia/Tokyo",
    "gmt": "Etc/GMT",
    "utc": "UTC",
    "z": "UTC",
}


@functools.cache
def _zone_index() -> dict[str, str]:
    """Map lower-cased zone names and their city parts to canonical IANA names."""
    index: dict[str, str] = {}
    for key in sorted(zoneinfo.available_timezones()):
        city = key.rsplit("/", 1)[-1].replace("_", " ").lower()
        index.setdefault(city, key)
        index[key.lower()] = key
    index.update(CITY_ZONES)
    return index


def zone_key(name: str) -> str | None:
    """Return the IANA name for a zone name, alias or city (any case), or None."""
    wanted = " ".join(name.replace("_", " ").split()).lower()
    return _zone_index().get(wanted) or _zone_index().get(name.strip().lower())
