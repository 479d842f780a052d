/* Order health score: 0 (healthy) to 100 (certainly late), DOMAIN.md playbook 2.
 *
 *   stage time over its standard        1 point per percent over, at most 40
 *   systems out of sync                 20
 *   people overloaded (> 85 %)          10
 *   anomaly rate of similar orders      1 point per percent, at most 15
 *   custom order                        5
 *   peak season                         10
 *
 * Customer importance and urgency do not change the score; they set the threshold at which
 * the order counts as late: 50 for key customers (strategic / VIP) and urgent orders, 70
 * otherwise (or the caller's own `threshold`). The labels carry the verdict (`late`), the
 * band and, when the promised delivery is known, when the 36-hour emergency plan is due. */
#include "health.h"

#include <math.h>
#include <stdarg.h>
#include "fmt.h"
#include <stdlib.h>
#include <string.h>

#define KEY_THRESHOLD 50.0
#define NORMAL_THRESHOLD 70.0
#define WARNING_HOURS 36

static void add_reason(health_result *r, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void add_reason(health_result *r, const char *format, ...) {
    if (r->n_reasons >= HEALTH_MAX_REASONS) return;
    char buf[512];
    va_list ap;
    va_start(ap, format);
    vfmt(buf, sizeof buf, format, ap);
    va_end(ap);
    r->reasons[r->n_reasons++] = strdup(buf);
}

static void add_label(health_result *r, const char *key, const char *format, ...) __attribute__((format(printf, 3, 4)));
static void add_label(health_result *r, const char *key, const char *format, ...) {
    if (r->n_labels >= HEALTH_MAX_LABELS) return;
    char buf[256];
    va_list ap;
    va_start(ap, format);
    vfmt(buf, sizeof buf, format, ap);
    va_end(ap);
    r->label_keys[r->n_labels] = strdup(key);
    r->label_values[r->n_labels++] = strdup(buf);
}

const char *health_label(const health_result *r, const char *key) {
    for (size_t i = 0; i < r->n_labels; i++)
        if (strcmp(r->label_keys[i], key) == 0) return r->label_values[i];
    return NULL;
}

void health_result_free(health_result *r) {
    for (size_t i = 0; i < r->n_reasons; i++) free(r->reasons[i]);
    for (size_t i = 0; i < r->n_labels; i++) { free(r->label_keys[i]); free(r->label_values[i]); }
    memset(r, 0, sizeof *r);
}

/* ---- time ---------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static long long days_from_civil(long long y, unsigned m, unsigned d) {
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d) {
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

int rfc3339_parse(const char *s, long long *out) {
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (!s || strlen(s) < 10) return 0;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d)) return 0;
    if (mo < 1 || mo > 12 || d < 1 || d > 31) return 0;
    const char *p = s + 10;
    long long offset = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (strlen(p) < 8 || !digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi) || p[5] != ':' || !digits(p + 6, 2, &sec)) return 0;
        if (h > 23 || mi > 59 || sec > 60) return 0;
        p += 8;
        if (*p == '.') { p++; while (*p >= '0' && *p <= '9') p++; }
        if (*p == 'Z' || *p == 'z') p++;
        else if (*p == '+' || *p == '-') {
            int oh, om;
            if (strlen(p) < 6 || !digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om)) return 0;
            offset = (oh * 60LL + om) * 60LL * (*p == '-' ? -1 : 1);
            p += 6;
        } else return 0;
    }
    if (*p) return 0;
    *out = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400LL + h * 3600LL + mi * 60LL + sec - offset;
    return 1;
}

void rfc3339_format(long long t, char *buf, size_t size) {
    long long days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    long long rem = t - days * 86400, y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    fmt(buf, size, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", y, m, d, rem / 3600, rem / 60 % 60, rem % 60);
}

/* ---- the score ----------------------------------------------------------------------- */

static int streq(const char *a, const char *b) { return a && strcmp(a, b) == 0; }

/* The customer's importance: customer.tier / customer.level / customer_tier / customer_level. */
static const char *customer_rank(const json_value *order) {
    const char *c[] = {
        json_str(json_path(order, "customer.tier")), json_str(json_path(order, "customer.level")),
        json_str(json_get(order, "customer_tier")), json_str(json_get(order, "customer_level")),
    };
    for (size_t i = 0; i < sizeof c / sizeof *c; i++)
        if (c[i] && *c[i]) return c[i];
    return NULL;
}

static int is_key_customer(const char *rank) {
    return streq(rank, "strategic") || streq(rank, "vip") || streq(rank, "VIP") || streq(rank, "key");
}

int health_assess(const json_value *doc, health_result *r, char *err, size_t err_size) {
    memset(r, 0, sizeof *r);
    if (!doc || doc->type != JSON_OBJECT) {
        fmt(err, err_size, "input must be a JSON object");
        return -1;
    }
    /* The engine's default envelope {input, vars, instance, now}, or a bare order. */
    const json_value *order = doc, *vars = NULL;
    const json_value *inner = json_get(doc, "input");
    if (inner && inner->type == JSON_OBJECT && (json_get(doc, "instance") || json_get(doc, "vars") || json_get(doc, "now"))) {
        order = inner;
        vars = json_get(doc, "vars");
    }
    const char *now_text = json_str(json_get(doc, "now"));
    if (!now_text) now_text = json_str(json_get(order, "now"));
    r->order_no = json_str(json_get(order, "order_no"));
    if (!r->order_no) r->order_no = json_str(json_get(order, "order_id"));

    double score = 0, v;
    char unscored[160] = "";
#define UNSCORED(what) (strcat(unscored[0] ? strcat(unscored, ",") : unscored, what))

    /* 1. Stage time against its standard. */
    double standard, elapsed;
    if (json_num(json_path(order, "progress.standard_hours"), &standard) &&
        json_num(json_path(order, "progress.elapsed_hours"), &elapsed) && standard > 0 && elapsed >= 0) {
        const char *stage = json_str(json_path(order, "progress.stage"));
        double over = (elapsed - standard) / standard * 100.0;
        if (over > 0) {
            score += over < 40 ? over : 40;
            add_reason(r, "%s is %.0f%% over its standard %g h (%g h so far)", stage ? stage : "the current stage", over, standard, elapsed);
        }
    } else {
        UNSCORED("stage_time");
    }

    /* 2. Consistency between sales, warehouse and ERP. */
    int sync = json_bool(json_get(order, "systems_in_sync"));
    if (sync == 0) {
        score += 20;
        add_reason(r, "sales, warehouse and ERP disagree about this order");
    } else if (sync < 0) {
        UNSCORED("systems_in_sync");
    }

    /* 3. Workload of the people on the order. */
    if (json_num(json_get(order, "owner_workload"), &v)) {
        if (v > 1.5) v /= 100.0; /* given in percent */
        if (v > 0.85) {
            score += 10;
            add_reason(r, "the people on the order are overloaded (%.0f%% utilisation)", v * 100);
        }
    } else {
        UNSCORED("owner_workload");
    }

    /* 4. Historical anomaly rate of similar orders. */
    if (json_num(json_get(order, "similar_anomaly_rate"), &v)) {
        if (v > 1.0) v /= 100.0; /* given in percent */
        double points = v * 100 < 15 ? v * 100 : 15;
        if (points >= 1) {
            score += points;
            add_reason(r, "%.0f%% of similar orders ran into trouble", v * 100);
        }
    } else {
        UNSCORED("similar_anomaly_rate");
    }

    /* 5. Order type and season. */
    if (streq(json_str(json_get(order, "order_type")), "custom")) {
        score += 5;
        add_reason(r, "custom work");
    }
    if (streq(json_str(json_get(order, "season")), "peak")) {
        score += 10;
        add_reason(r, "peak season");
    }

    score = round(score);
    if (score > 100) score = 100;
    r->score = score;

    /* Customer importance and urgency: the threshold. */
    const char *rank = customer_rank(order);
    int urgent = json_bool(json_get(order, "urgent")) == 1;
    double threshold;
    char why[96];
    if (json_num(json_get(order, "threshold"), &threshold) || json_num(json_get(vars, "threshold"), &threshold)) {
        fmt(why, sizeof why, "the workflow's threshold");
    } else if (is_key_customer(rank) || urgent) {
        threshold = KEY_THRESHOLD;
        fmt(why, sizeof why, "stricter threshold for %s", is_key_customer(rank) ? (urgent ? "a key customer's urgent order" : "a key customer") : "an urgent order");
    } else {
        threshold = NORMAL_THRESHOLD;
        fmt(why, sizeof why, "normal threshold");
    }
    int late = score >= threshold;

    add_label(r, "late", late ? "true" : "false");
    add_label(r, "band", "%s", score >= 70 ? "red" : score >= 50 ? "amber" : "green");
    add_label(r, "threshold", "%g", threshold);
    if (rank) add_label(r, "customer", "%s", rank);
    if (urgent) add_label(r, "urgent", "true");
    if (unscored[0]) add_label(r, "unscored", "%s", unscored);

    /* The 36-hour early warning. */
    long long promised, now, due;
    const char *promised_text = json_str(json_get(order, "promised_at"));
    int have_promised = rfc3339_parse(promised_text, &promised);
    int have_now = rfc3339_parse(now_text, &now);
    char due_text[32] = "";
    if (have_promised) {
        due = promised - WARNING_HOURS * 3600LL;
        rfc3339_format(due, due_text, sizeof due_text);
        add_label(r, "emergency_at", "%s", due_text);
        if (have_now) add_label(r, "hours_to_promise", "%.1f", (promised - now) / 3600.0);
    }

    add_reason(r, "score %.0f %s threshold %g (%s): %s", score, late ? ">=" : "<", threshold, why,
               late ? "expected to be late" : "on track");
    if (late && have_promised && have_now) {
        if (now >= promised)
            add_reason(r, "the promised delivery has passed: run the emergency response now");
        else if (now >= due)
            add_reason(r, "inside the %d hours before the promised delivery: start the emergency plan now (re-plan production, change carrier, tell the customer)", WARNING_HOURS);
        else
            add_reason(r, "start the emergency plan at %s, %d hours before the promised delivery, unless the score improves", due_text, WARNING_HOURS);
    }
    if (unscored[0]) add_reason(r, "not scored, the input lacks: %s", unscored);
    return 0;
#undef UNSCORED
}
