"""Order priority and response SLAs (DOMAIN.md playbook 1), as a pure function.

No WebAssembly here: `app.py` wraps this module in the component, and
`test_priority.py` tests it with plain CPython.

Each of three factors is rated 2 (high), 1 (medium) or 0 (low), and the order takes the
highest rating:

    customer level   vip / strategic = high, regular = medium, new (or unknown) = low
    amount           >= 100,000 = high, >= 10,000 = medium, below = low
    urgency          delivery within 3 days = high, within 7 days = medium, later = low

The score is the sum of the three ratings scaled to 0-100 (integer division, as the
reference tests do), so two orders of the same priority can still be ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

PRIORITIES = ("low", "medium", "high")
# Confirm within (playbook 1) and plan within twice that (the reference workflow).
RESPONSE_SLA = {"high": "PT1H", "medium": "PT4H", "low": "PT8H"}
PLAN_SLA = {"high": "PT2H", "medium": "PT8H", "low": "PT16H"}

CUSTOMER_RATING = {
    "vip": 2,
    "strategic": 2,
    "key": 2,
    "regular": 1,
    "new": 0,
    "small": 0,
}


class InputError(Exception):
    """The input cannot be scored; the message is shown to operators."""


@dataclass
class Result:
    score: float
    reasons: list[str] = field(default_factory=list)
    labels: list[tuple[str, str]] = field(default_factory=list)


def unwrap(doc):
    """Returns (order, now) from the engine's default envelope or a custom input.

    The default envelope is {"input": <start payload>, "vars", "instance", "now"}; a
    workflow may instead pass its own object (`"input": "<CEL>"`), which then is the order
    itself and may carry `now`.
    """
    if not isinstance(doc, dict):
        raise InputError("input must be a JSON object")
    if isinstance(doc.get("input"), dict) and ("instance" in doc or "vars" in doc or "now" in doc):
        return doc["input"], doc.get("now")
    return doc, doc.get("now")


def parse_time(text, what):
    """RFC 3339 (or a plain date, taken as midnight UTC) to an aware datetime."""
    if not isinstance(text, str) or not text:
        raise InputError(f"'{what}' must be an RFC 3339 date-time string")
    s = text.strip()
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        raise InputError(f"'{what}' is not an RFC 3339 date-time: {text!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t


def number(value, what):
    if isinstance(value, bool):
        raise InputError(f"'{what}' must be a number")
    if isinstance(value, (int, float)):
        n = float(value)
    elif isinstance(value, str):
        try:
            n = float(value.replace(",", "").strip())
        except ValueError:
            raise InputError(f"'{what}' must be a number, not {value!r}") from None
    else:
        raise InputError(f"'{what}' must be a number")
    if not math.isfinite(n):
        raise InputError(f"'{what}' must be finite")
    return n


def customer_level(order):
    """customer.level, customer.tier, customer_level or customer_tier (first present)."""
    customer = order.get("customer")
    candidates = []
    if isinstance(customer, dict):
        candidates += [customer.get("level"), customer.get("tier")]
    candidates += [order.get("customer_level"), order.get("customer_tier")]
    for c in candidates:
        if isinstance(c, str) and c.strip():
            return c.strip().lower()
    return None


def fmt_amount(a):
    return f"{a:,.0f}" if a == int(a) else f"{a:,.2f}"


def assess(doc) -> Result:
    order, now_text = unwrap(doc)
    reasons: list[str] = []

    # Customer level.
    level = customer_level(order)
    customer = CUSTOMER_RATING.get(level, 0) if level else 0
    if level is None:
        reasons.append("customer level not given: rated low")
    elif level not in CUSTOMER_RATING:
        reasons.append(f"unknown customer level '{level}': rated low")
    else:
        reasons.append(f"{level.upper() if level == 'vip' else level} customer")

    # Amount.
    if order.get("amount") is None:
        value = 0
        reasons.append("no amount given: rated low")
    else:
        amount = number(order["amount"], "amount")
        if amount >= 100_000:
            value = 2
            reasons.append(f"amount {fmt_amount(amount)} >= 100,000")
        elif amount >= 10_000:
            value = 1
            reasons.append(f"amount {fmt_amount(amount)} >= 10,000")
        else:
            value = 0
            reasons.append(f"amount {fmt_amount(amount)} < 10,000")

    # Urgency: days from now to the promised delivery.
    days = None
    if order.get("delivery_days") is not None:
        days = number(order["delivery_days"], "delivery_days")
    elif order.get("promised_at") is not None:
        if now_text is None:
            raise InputError("'promised_at' is given but 'now' is not: cannot rate urgency")
        promised = parse_time(order["promised_at"], "promised_at")
        now = parse_time(now_text, "now")
        days = (promised - now).total_seconds() / 86400.0
    if days is None:
        urgency = 0
        reasons.append("no promised delivery date")
    elif days <= 3:
        urgency = 2
        reasons.append(
            f"delivery in {days:.1f} days (3 or fewer)" if days >= 0
            else f"promised delivery passed {-days:.1f} days ago"
        )
    elif days <= 7:
        urgency = 1
        reasons.append(f"delivery in {days:.1f} days (4 to 7)")
    else:
        urgency = 0
        reasons.append(f"delivery in {days:.1f} days (8 or more)")

    priority = PRIORITIES[max(customer, value, urgency)]

    # Playbook 1 intake checks, reported alongside (the workflow routes on its own copy).
    abnormal = []
    if order.get("promised_at") is None and order.get("delivery_days") is None:
        abnormal.append("missing delivery date")
    if order.get("stock_status") == "conflict" and order.get("payment_status") not in ("paid", "deposit"):
        abnormal.append("stock conflict without prepayment")
    if order.get("customization") == "vague":
        abnormal.append("vague custom requirements")
    reasons += [f"abnormal: {a}" for a in abnormal]

    labels = [
        ("priority", priority),
        ("response_sla", RESPONSE_SLA[priority]),
        ("plan_sla", PLAN_SLA[priority]),
        ("channel", "green" if priority == "high" else "standard"),
        ("abnormal", "true" if abnormal else "false"),
        ("ratings", f"customer={PRIORITIES[customer]},amount={PRIORITIES[value]},urgency={PRIORITIES[urgency]}"),
    ]
    if days is not None:
        labels.append(("delivery_days", f"{days:.1f}"))
    return Result(score=float((customer + value + urgency) * 100 // 6), reasons=reasons, labels=labels)
