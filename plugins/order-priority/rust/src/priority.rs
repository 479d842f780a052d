//! The pure priority rule, testable on any target (`cargo test`).

use serde_json::Value;

/// What the scorer computes, before it is mapped onto the WIT types.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub score: f64,
    pub reasons: Vec<String>,
    pub labels: Vec<(String, String)>,
}

const PRIORITIES: [&str; 3] = ["low", "medium", "high"];
const RESPONSE_SLA: [&str; 3] = ["PT8H", "PT4H", "PT1H"];
const PLAN_SLA: [&str; 3] = ["PT16H", "PT8H", "PT2H"];

/// `(order, now)` from the engine's envelope `{input, vars, instance, now}` or a bare order.
fn unwrap(doc: &Value) -> Result<(&Value, Option<&Value>), String> {
    let obj = doc.as_object().ok_or("input must be a JSON object")?;
    match obj.get("input") {
        Some(inner)
            if inner.is_object()
                && ["instance", "vars", "now"]
                    .iter()
                    .any(|k| obj.contains_key(*k)) =>
        {
            Ok((inner, obj.get("now")))
        }
        _ => Ok((doc, obj.get("now"))),
    }
}

fn number(v: &Value, what: &str) -> Result<f64, String> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.replace(',', "").trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
        .ok_or_else(|| format!("'{what}' must be a number, not {v}"))
}

/// Days since 1970-01-01 (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 (or a plain date, as midnight UTC) to Unix seconds.
pub fn parse_time(v: &Value, what: &str) -> Result<i64, String> {
    let bad = || format!("'{what}' is not an RFC 3339 date-time: {v}");
    let s = v.as_str().ok_or_else(bad)?.trim();
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        s.get(r)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|t| t.parse().ok())
            .ok_or_else(bad)
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut secs = days_from_civil(y, mo, d) * 86_400;
    if b.len() == 10 {
        return Ok(secs);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    secs += num(11..13)? * 3600 + num(14..16)? * 60 + num(17..19)?;
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    match rest {
        "Z" | "z" => Ok(secs),
        _ if rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && &rest[3..4] == ":" =>
        {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let off = rest[1..3].parse::<i64>().map_err(|_| bad())? * 3600
                + rest[4..6].parse::<i64>().map_err(|_| bad())? * 60;
            Ok(secs - sign * off)
        }
        _ => Err(bad()),
    }
}

fn customer_level(order: &Value) -> Option<String> {
    [
        &order["customer"]["level"],
        &order["customer"]["tier"],
        &order["customer_level"],
        &order["customer_tier"],
    ]
    .into_iter()
    .filter_map(Value::as_str)
    .map(str::trim)
    .find(|s| !s.is_empty())
    .map(str::to_lowercase)
}

fn amount_text(a: f64) -> String {
    // 128000 -> "128,000" (whole amounts only get separators, like the Python plugin).
    if a.fract() != 0.0 || a.abs() >= 1e15 {
        return format!("{a:.2}");
    }
    let digits = format!("{}", a.abs() as i64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if a < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

/// The priority of one order; `Err` is shown to operators.
pub fn assess(doc: &Value) -> Result<Outcome, String> {
    let (order, now) = unwrap(doc)?;
    let (customer, customer_reason) = customer_rating(order);
    let (value, value_reason) = amount_rating(order)?;
    let days = delivery_days(order, now)?;
    let (urgency, urgency_reason) = urgency_rating(days);
    let abnormal = abnormal(order);
    let mut reasons = vec![customer_reason, value_reason, urgency_reason];
    reasons.extend(abnormal.iter().map(|a| format!("abnormal: {a}")));
    let p = customer.max(value).max(urgency);
    Ok(Outcome {
        score: ((customer + value + urgency) * 100 / 6) as f64,
        reasons,
        labels: labels(p, (customer, value, urgency), !abnormal.is_empty(), days),
    })
}

/// The customer's rating (0 low, 1 medium, 2 high) and why.
fn customer_rating(order: &Value) -> (usize, String) {
    let level = customer_level(order);
    let rating = match level.as_deref() {
        Some("vip" | "strategic" | "key") => 2,
        Some("regular") => 1,
        _ => 0,
    };
    let reason = match level.as_deref() {
        None => "customer level not given: rated low".to_owned(),
        Some("vip") => "VIP customer".to_owned(),
        Some(l @ ("strategic" | "key" | "regular" | "new" | "small")) => format!("{l} customer"),
        Some(l) => format!("unknown customer level '{l}': rated low"),
    };
    (rating, reason)
}

/// The order amount's rating and why; `Err` when the amount is not a number.
fn amount_rating(order: &Value) -> Result<(usize, String), String> {
    let Some(v) = order.get("amount").filter(|v| !v.is_null()) else {
        return Ok((0, "no amount given: rated low".to_owned()));
    };
    let a = number(v, "amount")?;
    let (rating, rule) = if a >= 100_000.0 {
        (2, ">= 100,000")
    } else if a >= 10_000.0 {
        (1, ">= 10,000")
    } else {
        (0, "< 10,000")
    };
    Ok((rating, format!("amount {} {rule}", amount_text(a))))
}

/// Days until the promised delivery: `delivery_days`, else `promised_at - now`; `None`
/// when neither is given.
fn delivery_days(order: &Value, now: Option<&Value>) -> Result<Option<f64>, String> {
    if let Some(v) = order.get("delivery_days").filter(|v| !v.is_null()) {
        return Ok(Some(number(v, "delivery_days")?));
    }
    let Some(p) = order.get("promised_at").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let now = now.ok_or("'promised_at' is given but 'now' is not: cannot rate urgency")?;
    Ok(Some(
        (parse_time(p, "promised_at")? - parse_time(now, "now")?) as f64 / 86_400.0,
    ))
}

/// The urgency rating of `days` until delivery and why.
fn urgency_rating(days: Option<f64>) -> (usize, String) {
    match days {
        None => (0, "no promised delivery date".to_owned()),
        Some(d) if d <= 3.0 => (
            2,
            if d >= 0.0 {
                format!("delivery in {d:.1} days (3 or fewer)")
            } else {
                format!("promised delivery passed {:.1} days ago", -d)
            },
        ),
        Some(d) if d <= 7.0 => (1, format!("delivery in {d:.1} days (4 to 7)")),
        Some(d) => (0, format!("delivery in {d:.1} days (8 or more)")),
    }
}

/// What makes the order abnormal (the playbook's rules), in a fixed order.
fn abnormal(order: &Value) -> Vec<&'static str> {
    let mut out = Vec::new();
    if order.get("promised_at").is_none_or(Value::is_null)
        && order.get("delivery_days").is_none_or(Value::is_null)
    {
        out.push("missing delivery date");
    }
    if order["stock_status"] == "conflict"
        && !matches!(order["payment_status"].as_str(), Some("paid" | "deposit"))
    {
        out.push("stock conflict without prepayment");
    }
    if order["customization"] == "vague" {
        out.push("vague custom requirements");
    }
    out
}

/// The labels of priority `p` from its three ratings.
fn labels(
    p: usize,
    (customer, value, urgency): (usize, usize, usize),
    abnormal: bool,
    days: Option<f64>,
) -> Vec<(String, String)> {
    let mut labels: Vec<(String, String)> = [
        ("priority", PRIORITIES[p].to_owned()),
        ("response_sla", RESPONSE_SLA[p].to_owned()),
        ("plan_sla", PLAN_SLA[p].to_owned()),
        (
            "channel",
            if p == 2 { "green" } else { "standard" }.to_owned(),
        ),
        ("abnormal", abnormal.to_string()),
        (
            "ratings",
            format!(
                "customer={},amount={},urgency={}",
                PRIORITIES[customer], PRIORITIES[value], PRIORITIES[urgency]
            ),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(d) = days {
        labels.push(("delivery_days".to_owned(), format!("{d:.1}")));
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn label(o: &Outcome, k: &str) -> String {
        o.labels
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    #[test]
    fn the_playbook_examples() {
        let env = |order: Value| json!({"input": order, "vars": {}, "instance": {}, "now": "2024-05-06T09:00:00Z"});
        let vip = assess(&env(json!({"customer": {"level": "vip"}, "amount": 128000, "promised_at": "2024-05-16T09:00:00Z"}))).unwrap();
        assert_eq!(
            (
                label(&vip, "priority"),
                label(&vip, "response_sla"),
                vip.score
            ),
            ("high".into(), "PT1H".into(), 66.0)
        );
        assert_eq!(vip.reasons[1], "amount 128,000 >= 100,000");
        let regular = assess(&env(json!({"customer": {"level": "regular"}, "amount": 36500, "promised_at": "2024-05-12T16:00:00Z"}))).unwrap();
        assert_eq!(
            (
                label(&regular, "priority"),
                label(&regular, "delivery_days")
            ),
            ("medium".into(), "6.3".into())
        );
        let new = assess(&env(json!({"customer": {"level": "new"}, "amount": 6800, "promised_at": "2024-05-20T12:00:00Z"}))).unwrap();
        assert_eq!(
            (label(&new, "priority"), label(&new, "plan_sla"), new.score),
            ("low".into(), "PT16H".into(), 0.0)
        );
        let abnormal = assess(&env(json!({"customer": {"level": "regular"}, "amount": 21400, "stock_status": "conflict", "payment_status": "unpaid"}))).unwrap();
        assert_eq!(label(&abnormal, "abnormal"), "true");
    }

    #[test]
    fn times_and_errors() {
        assert_eq!(
            parse_time(&json!("2024-05-10T20:00:00.5+08:00"), "t"),
            Ok(1_715_342_400)
        );
        assert_eq!(parse_time(&json!("2024-05-10"), "t"), Ok(1_715_299_200));
        assert!(parse_time(&json!("next week"), "t").is_err());
        assert!(assess(&json!([])).is_err());
        assert!(assess(&json!({"amount": "lots"})).is_err());
        assert!(assess(&json!({"promised_at": "2024-05-10T00:00:00Z"})).is_err());
    }
}
