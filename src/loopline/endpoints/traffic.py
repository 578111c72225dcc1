"""Traffic rules: percentages that sum to 100 (or 0 with no deployments), and the mirror's limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from loopline.errors import Refused, UsageError

__all__ = ["MAX_MIRROR", "check_mirror", "check_traffic", "parse_assignments", "with_share"]

MAX_MIRROR = 50


def parse_assignments(items: Iterable[str], what: str = "traffic") -> dict[str, int]:
    """``["blue=90", "green=10"]`` (or ``blue=90%``) as ``{"blue": 90, "green": 10}``."""
    result: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        value = value.strip().removesuffix("%")
        if not sep or not name or not value.isdigit():
            raise UsageError(f"{what} '{item}' is not DEPLOYMENT=PERCENT (for example blue=90)")
        if name in result:
            raise UsageError(f"{what} names deployment '{name}' twice")
        result[name] = int(value)
    return result


def check_traffic(deployments: Iterable[str], traffic: Mapping[str, int]) -> dict[str, int]:
    """The full traffic map (deployments not named get 0), refused unless it sums to 100."""
    names = list(deployments)
    unknown = sorted(set(traffic) - set(names))
    if unknown:
        known = ", ".join(names) or "none"
        raise Refused(f"no deployment named {', '.join(repr(u) for u in unknown)} (deployments: {known})")
    for name, percent in traffic.items():
        if not 0 <= percent <= 100:
            raise UsageError(f"traffic for '{name}' is {percent}%; give 0 to 100")
    full = {name: int(traffic.get(name, 0)) for name in names}
    total = sum(full.values())
    expected = 100 if names else 0
    if total != expected:
        shown = " + ".join(f"{name} {percent}" for name, percent in full.items() if percent) or "nothing"
        raise Refused(f"traffic must sum to {expected}%, but {shown} = {total}%")
    return full


def check_mirror(traffic: Mapping[str, int], mirror: Mapping[str, int]) -> dict[str, int]:
    """A mirror sends a copy of up to 50% of requests to one deployment that takes no live traffic."""
    if len(mirror) > 1:
        raise UsageError("mirror traffic goes to one deployment at a time")
    for name, percent in mirror.items():
        if name not in traffic:
            raise Refused(f"no deployment named '{name}' to mirror to")
        if not 0 <= percent <= MAX_MIRROR:
            raise Refused(f"mirror for '{name}' is {percent}%; mirror at most {MAX_MIRROR}% of requests")
        if percent and traffic[name]:
            raise Refused(
                f"'{name}' takes {traffic[name]}% of live traffic; mirror only to a deployment with none"
            )
    return {name: percent for name, percent in mirror.items() if percent}


def with_share(current: Mapping[str, int], name: str, percent: int) -> dict[str, int]:
    """Give ``name`` ``percent``% and scale the others down proportionally, keeping the sum at 100."""
    if not 0 <= percent <= 100:
        raise UsageError(f"traffic {percent}% is not between 0 and 100")
    others = {k: v for k, v in current.items() if k != name}
    rest = 100 - percent
    total = sum(others.values())
    if not others or total == 0:
        if rest and others:
            raise Refused(f"no other deployment takes traffic to give the remaining {rest}% to")
        if rest and not others:
            raise Refused(f"'{name}' is the only deployment, so it takes 100% of traffic, not {percent}%")
        return {**{k: 0 for k in others}, name: percent}
    scaled = {k: v * rest // total for k, v in others.items()}
    shortfall = rest - sum(scaled.values())
    for key in sorted(others, key=lambda k: -others[k])[:shortfall]:
        scaled[key] += 1
    return {**scaled, name: percent}
