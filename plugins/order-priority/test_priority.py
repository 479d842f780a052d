"""Unit tests of the pure priority logic: `python3 -m unittest -v` in this directory."""

import json
import unittest

import priority

NOW = "2024-05-06T09:00:00Z"


def envelope(order, now=NOW):
    return {"input": order, "vars": {}, "instance": {"id": "i1", "stage": "prioritise"}, "now": now}


def labels(result):
    return dict(result.labels)


class Priority(unittest.TestCase):
    def test_vip_is_high_with_one_hour_response(self):
        r = priority.assess(envelope({
            "order_no": "202405-001", "customer": {"level": "vip"}, "amount": 128000,
            "promised_at": "2024-05-16T09:00:00Z", "payment_status": "deposit",
            "stock_status": "available", "customization": "none",
        }))
        self.assertEqual(labels(r)["priority"], "high")
        self.assertEqual(labels(r)["response_sla"], "PT1H")
        self.assertEqual(labels(r)["plan_sla"], "PT2H")
        self.assertEqual(labels(r)["abnormal"], "false")
        self.assertEqual(r.score, 66.0)  # (2 + 2 + 0) * 100 // 6
        self.assertIn("VIP customer", r.reasons)

    def test_regular_mid_amount_six_days_is_medium(self):
        r = priority.assess(envelope({
            "customer": {"level": "regular"}, "amount": 36500, "promised_at": "2024-05-12T16:00:00Z",
        }))
        self.assertEqual(labels(r)["priority"], "medium")
        self.assertEqual(labels(r)["response_sla"], "PT4H")
        self.assertEqual(labels(r)["delivery_days"], "6.3")
        self.assertEqual(r.score, 50.0)

    def test_new_small_late_delivery_is_low(self):
        r = priority.assess(envelope({
            "customer": {"level": "new"}, "amount": 6800, "promised_at": "2024-05-20T12:00:00Z",
        }))
        self.assertEqual(labels(r)["priority"], "low")
        self.assertEqual(labels(r)["response_sla"], "PT8H")
        self.assertEqual(labels(r)["plan_sla"], "PT16H")
        self.assertEqual(r.score, 0.0)

    def test_any_high_factor_makes_the_order_high(self):
        big = priority.assess(envelope({"customer": {"level": "new"}, "amount": 100000,
                                        "promised_at": "2024-06-30T00:00:00Z"}))
        soon = priority.assess(envelope({"customer": {"level": "new"}, "amount": 10,
                                         "promised_at": "2024-05-09T09:00:00Z"}))
        self.assertEqual(labels(big)["priority"], "high")
        self.assertEqual(labels(soon)["priority"], "high", "exactly 3 days is within 3 days")

    def test_boundaries(self):
        def p(amount=0, days=30):
            return labels(priority.assess({"customer_level": "new", "amount": amount, "delivery_days": days}))["priority"]
        self.assertEqual(p(amount=9999.99), "low")
        self.assertEqual(p(amount=10000), "medium")
        self.assertEqual(p(amount=99999), "medium")
        self.assertEqual(p(days=7), "medium")
        self.assertEqual(p(days=7.5), "low")
        self.assertEqual(p(days=-1), "high", "already overdue")

    def test_strategic_tier_counts_as_vip(self):
        r = priority.assess({"customer": {"tier": "strategic"}, "amount": 1, "delivery_days": 30})
        self.assertEqual(labels(r)["priority"], "high")

    def test_abnormal_order_is_flagged(self):
        r = priority.assess(envelope({
            "customer": {"level": "regular"}, "amount": 21400, "payment_status": "unpaid",
            "stock_status": "conflict", "customization": "none",
        }))
        self.assertEqual(labels(r)["priority"], "medium")
        self.assertEqual(labels(r)["abnormal"], "true")
        self.assertIn("abnormal: missing delivery date", r.reasons)
        self.assertIn("abnormal: stock conflict without prepayment", r.reasons)
        self.assertNotIn("delivery_days", labels(r))

    def test_custom_input_without_envelope(self):
        r = priority.assess({"customer_level": "VIP", "amount": "1,000", "promised_at": "2024-05-30", "now": NOW})
        self.assertEqual(labels(r)["priority"], "high")

    def test_errors(self):
        with self.assertRaises(priority.InputError):
            priority.assess([])
        with self.assertRaises(priority.InputError):
            priority.assess({"amount": "lots"})
        with self.assertRaises(priority.InputError):
            priority.assess({"promised_at": "2024-05-30T00:00:00Z"})  # no now
        with self.assertRaises(priority.InputError):
            priority.assess(envelope({"promised_at": "next week"}))

    def test_output_is_json_serialisable(self):
        r = priority.assess(envelope({"customer": {"level": "vip"}}))
        json.dumps({"score": r.score, "reasons": r.reasons, "labels": r.labels})


if __name__ == "__main__":
    unittest.main()
