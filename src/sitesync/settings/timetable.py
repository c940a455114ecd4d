"""Bandwidth limits written the way rclone users know them (``--bwlimit``).

A limit is one of:

* a rate: ``512K``, ``10M``, ``1.5G`` bytes per second (binary units: K = KiB, M = MiB, G = GiB,
  T = TiB; ``10MiB`` and ``10Mi`` mean the same; a bare number is KiB/s, as in rclone), or ``off``;
* an upload:download pair: ``10M:2M`` (``off`` on either side);
* a timetable of entries ``[DAY-]HH:MM,RATE`` separated by spaces or semicolons, e.g.
  ``"08:00,2M 19:00,off"`` (every day) or ``"Mon-08:00,2M Fri-19:00,off Sat-00:00,10M"`` (weekly).
  An entry applies from its time until the next entry; the last one of the week wraps around to
  the first. Times are this machine's local time.

``Timetable.at(when)`` gives the limit in force at a moment and when it changes next. Parsing is
strict: a bad value is refused with one line that shows the accepted forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

KIB = 1024
UNITS = {"b": 1, "k": KIB, "m": KIB**2, "g": KIB**3, "t": KIB**4}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY

_RATE_RE = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>[bkmgt]?)(?:i?b)?$", re.IGNORECASE)
_TIME_RE = re.compile(r"^(?P<hh>\d{2}):(?P<mm>\d{2})$")
HELP = (
    "use a rate such as 512K, 10M or 1.5G (bytes per second; K/M/G = KiB/MiB/GiB), 'off', "
    "UP:DOWN such as 10M:2M, or a timetable such as '08:00,2M 19:00,off' or 'Mon-08:00,2M Sat-00:00,off'"
)


class TimetableError(ValueError):
    """A bandwidth value that cannot be parsed; the message says what is accepted."""


Rate = float | None  # bytes per second; None = no limit


@dataclass(frozen=True)
class Limit:
    """The limit in force: upload and download rates (None = unlimited)."""

    up: Rate
    down: Rate

    def rate(self, direction: str) -> Rate:
        return self.up if direction == "up" else self.down

    @property
    def unlimited(self) -> bool:
        return self.up is None and self.down is None


UNLIMITED = Limit(None, None)


@dataclass(frozen=True)
class Slot:
    minute: int  # minute of the week, Monday 00:00 = 0
    limit: Limit
    text: str  # the rate as written


@dataclass(frozen=True)
class InForce:
    """What ``Timetable.at`` returns: the limit, and when the next entry takes over (None: never)."""

    limit: Limit
    text: str
    changes_at: datetime | None
    next_text: str | None


def parse_rate(text: str, *, context: str) -> Rate:
    value = text.strip()
    if value.lower() == "off":
        return None
    match = _RATE_RE.match(value)
    if not match:
        raise TimetableError(f"{context}: {value!r} is not a rate; {HELP}")
    number = float(match.group("number"))
    unit = match.group("unit").lower()
    rate = number * (UNITS[unit] if unit else KIB)
    if rate < 1:
        raise TimetableError(
            f"{context}: a rate of {value!r} would stop every transfer; use 'off' for no limit, "
            "or `sitesync pause` to stop transfers"
        )
    return rate


def parse_limit(text: str, *, context: str) -> Limit:
    up_text, sep, down_text = text.partition(":")
    up = parse_rate(up_text, context=context)
    down = parse_rate(down_text, context=context) if sep else up
    return Limit(up, down)


def _entry_minutes(spec: str, *, context: str) -> list[int]:
    day, sep, clock = spec.rpartition("-")
    match = _TIME_RE.match(clock)
    if not match:
        raise TimetableError(f"{context}: {spec!r} is not a time; write HH:MM or DAY-HH:MM (Mon-08:00); {HELP}")
    hh, mm = int(match.group("hh")), int(match.group("mm"))
    if hh > 23 or mm > 59:
        raise TimetableError(f"{context}: {clock!r} is not a time of day (00:00 to 23:59)")
    minute = hh * 60 + mm
    if not sep:
        return [d * MINUTES_PER_DAY + minute for d in range(7)]
    key = day.strip().lower()[:3]
    if key not in DAYS or day.strip().lower() not in (key, _full_day(key)):
        raise TimetableError(f"{context}: unknown day {day!r}; use Mon, Tue, Wed, Thu, Fri, Sat or Sun")
    return [DAYS.index(key) * MINUTES_PER_DAY + minute]


def _full_day(key: str) -> str:
    return {
        "mon": "monday",
        "tue": "tuesday",
        "wed": "wednesday",
        "thu": "thursday",
        "fri": "friday",
        "sat": "saturday",
        "sun": "sunday",
    }[key]


@dataclass(frozen=True)
class Timetable:
    """A parsed bandwidth value: one slot (a constant limit) or a weekly table of slots."""

    text: str
    slots: tuple[Slot, ...]

    @classmethod
    def parse(cls, text: str, *, context: str = "bandwidth") -> Timetable:
        if not isinstance(text, str) or not text.strip():
            raise TimetableError(f"{context}: empty value; {HELP}")
        entries = [e for e in re.split(r"[\s;]+", text.strip()) if e]
        if len(entries) == 1 and "," not in entries[0]:
            if _TIME_RE.match(entries[0].rpartition("-")[2]):
                raise TimetableError(f"{context}: the time {entries[0]!r} needs a rate, e.g. '{entries[0]},2M'")
            return cls(text.strip(), (Slot(0, parse_limit(entries[0], context=context), entries[0]),))
        by_minute: dict[int, Slot] = {}
        for entry in entries:
            when, sep, rate = entry.partition(",")
            if not sep or not rate:
                raise TimetableError(f"{context}: {entry!r} is not a timetable entry; write TIME,RATE; {HELP}")
            limit = parse_limit(rate, context=context)
            for minute in _entry_minutes(when, context=context):
                by_minute[minute] = Slot(minute, limit, rate)  # a later entry for the same minute wins
        return cls(text.strip(), tuple(sorted(by_minute.values(), key=lambda s: s.minute)))

    @property
    def constant(self) -> bool:
        return len(self.slots) == 1

    def at(self, when: datetime) -> InForce:
        """The limit in force at ``when`` (a local time) and when the timetable changes next."""
        if self.constant:
            slot = self.slots[0]
            return InForce(slot.limit, slot.text, None, None)
        minute = when.weekday() * MINUTES_PER_DAY + when.hour * 60 + when.minute
        current = self.slots[-1]  # before the week's first entry, the last one still applies
        following = self.slots[0]
        for i, slot in enumerate(self.slots):
            if slot.minute <= minute:
                current = slot
                following = self.slots[(i + 1) % len(self.slots)]
        ahead = (following.minute - minute) % MINUTES_PER_WEEK or MINUTES_PER_WEEK
        start_of_minute = when.replace(second=0, microsecond=0)
        return InForce(current.limit, current.text, start_of_minute + timedelta(minutes=ahead), following.text)


def check_bandwidth(value: str | None) -> str | None:
    """Pydantic validator body: a bandwidth setting must parse; it is kept as written."""
    if value is None:
        return None
    try:
        return Timetable.parse(value).text
    except TimetableError as exc:  # the settings error names the key already
        raise ValueError(str(exc).removeprefix("bandwidth: ")) from None


def human_rate(rate: Rate) -> str:
    if rate is None:
        return "off"
    for unit, size in (("GiB", KIB**3), ("MiB", KIB**2), ("KiB", KIB)):
        if rate >= size:
            return f"{rate / size:.3g} {unit}/s"
    return f"{rate:.0f} B/s"


__all__ = [
    "UNLIMITED",
    "InForce",
    "Limit",
    "Timetable",
    "TimetableError",
    "check_bandwidth",
    "human_rate",
    "parse_limit",
    "parse_rate",
]
