/* Native unit tests of the health score and the JSON reader: `./test/run.sh`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/health.h"
#include "../src/json.h"
#include "../src/fmt.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static int assess(const char *text, health_result *r, char *err) {
    json_value *doc = json_parse(text, strlen(text), err, 256);
    if (!doc) return -2;
    int rc = health_assess(doc, r, err, 256);
    json_free(doc);
    return rc;
}

static const char *label(health_result *r, const char *key) {
    const char *v = health_label(r, key);
    return v ? v : "(none)";
}

static int has_reason(health_result *r, const char *needle) {
    for (size_t i = 0; i < r->n_reasons; i++)
        if (strstr(r->reasons[i], needle)) return 1;
    return 0;
}

/* The delay-early-warning samples in the engine's envelope, started at 2024-05-08T10:00Z. */
#define ENVELOPE(order, now) "{\"input\": " order ", \"vars\": {}, \"instance\": {\"id\": \"i1\", \"stage\": \"score\"}, \"now\": \"" now "\"}"
#define LATE_REGULAR "{\"order_no\": \"202405-011\", \"customer\": {\"id\": \"C-0311\", \"name\": \"Delta Packaging Ltd\", \"tier\": \"regular\"}," \
    "\"promised_at\": \"2024-05-10T12:00:00Z\", \"urgent\": false, \"order_type\": \"standard\", \"season\": \"normal\"," \
    "\"progress\": {\"stage\": \"production\", \"standard_hours\": 72, \"elapsed_hours\": 96}," \
    "\"systems_in_sync\": false, \"owner_workload\": 0.92, \"similar_anomaly_rate\": 0.12}"
#define HEALTHY_STRATEGIC "{\"order_no\": \"202405-012\", \"customer\": {\"tier\": \"strategic\"}, \"promised_at\": \"2024-05-10T12:00:00Z\"," \
    "\"urgent\": false, \"order_type\": \"standard\", \"season\": \"normal\"," \
    "\"progress\": {\"stage\": \"qc\", \"standard_hours\": 24, \"elapsed_hours\": 10}," \
    "\"systems_in_sync\": true, \"owner_workload\": 0.6, \"similar_anomaly_rate\": 0.03}"
#define URGENT_CUSTOM(tier, urgent) "{\"order_no\": \"202405-013\", \"customer\": {\"tier\": \"" tier "\"}, \"promised_at\": \"2024-05-10T12:00:00Z\"," \
    "\"urgent\": " urgent ", \"order_type\": \"custom\", \"season\": \"normal\"," \
    "\"progress\": {\"stage\": \"production\", \"standard_hours\": 72, \"elapsed_hours\": 90}," \
    "\"systems_in_sync\": false, \"owner_workload\": 0.7, \"similar_anomaly_rate\": 0.08}"

static void test_samples(void) {
    health_result r;
    char err[256];

    CHECK(assess(ENVELOPE(LATE_REGULAR, "2024-05-08T10:00:00Z"), &r, err) == 0, "%s", err);
    CHECK(r.score == 75, "late-regular scores 75, got %g", r.score);
    CHECK(strcmp(label(&r, "late"), "true") == 0, "late=%s", label(&r, "late"));
    CHECK(strcmp(label(&r, "threshold"), "70") == 0, "threshold=%s", label(&r, "threshold"));
    CHECK(strcmp(label(&r, "band"), "red") == 0, "band=%s", label(&r, "band"));
    CHECK(strcmp(label(&r, "emergency_at"), "2024-05-09T00:00:00Z") == 0, "emergency_at=%s", label(&r, "emergency_at"));
    CHECK(strcmp(label(&r, "hours_to_promise"), "50.0") == 0, "hours_to_promise=%s", label(&r, "hours_to_promise"));
    CHECK(has_reason(&r, "production is 33% over its standard 72 h"), "stage reason");
    CHECK(has_reason(&r, "disagree"), "sync reason");
    CHECK(has_reason(&r, "overloaded (92% utilisation)"), "workload reason");
    CHECK(has_reason(&r, "12% of similar orders"), "anomaly reason");
    CHECK(has_reason(&r, "start the emergency plan at 2024-05-09T00:00:00Z"), "36 h reason");
    CHECK(strcmp(label(&r, "unscored"), "(none)") == 0, "all factors given");
    health_result_free(&r);

    /* At the checkpoint, 36 h before: act now. */
    CHECK(assess(ENVELOPE(LATE_REGULAR, "2024-05-09T00:00:00Z"), &r, err) == 0, "%s", err);
    CHECK(has_reason(&r, "start the emergency plan now"), "inside the window");
    health_result_free(&r);

    CHECK(assess(ENVELOPE(HEALTHY_STRATEGIC, "2024-05-08T10:00:00Z"), &r, err) == 0, "%s", err);
    CHECK(r.score == 3, "healthy-strategic scores 3, got %g", r.score);
    CHECK(strcmp(label(&r, "late"), "false") == 0, "not late");
    CHECK(strcmp(label(&r, "threshold"), "50") == 0, "key customer threshold 50, got %s", label(&r, "threshold"));
    CHECK(strcmp(label(&r, "band"), "green") == 0, "green");
    health_result_free(&r);

    /* 58 is late for an urgent order and for a key customer, not for an ordinary one. */
    const char *cases[][2] = {
        {ENVELOPE(URGENT_CUSTOM("new", "true"), "2024-05-08T10:00:00Z"), "true"},
        {ENVELOPE(URGENT_CUSTOM("new", "false"), "2024-05-08T10:00:00Z"), "false"},
        {ENVELOPE(URGENT_CUSTOM("strategic", "false"), "2024-05-08T10:00:00Z"), "true"},
        {ENVELOPE(URGENT_CUSTOM("vip", "false"), "2024-05-08T10:00:00Z"), "true"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK(assess(cases[i][0], &r, err) == 0, "%s", err);
        CHECK(r.score == 58, "urgent-custom #%zu scores 58, got %g", i, r.score);
        CHECK(strcmp(label(&r, "late"), cases[i][1]) == 0, "urgent-custom #%zu late=%s", i, label(&r, "late"));
        CHECK(strcmp(label(&r, "band"), "amber") == 0, "amber");
        health_result_free(&r);
    }
}

static void test_edges(void) {
    health_result r;
    char err[256];

    /* A bare order (custom input), a threshold from the workflow's vars, caps. */
    CHECK(assess("{\"progress\": {\"standard_hours\": 10, \"elapsed_hours\": 100}, \"systems_in_sync\": false,"
                 "\"owner_workload\": 95, \"similar_anomaly_rate\": 0.5, \"order_type\": \"custom\", \"season\": \"peak\"}", &r, err) == 0, "%s", err);
    CHECK(r.score == 100, "40+20+10+15+5+10 = 100, got %g", r.score);
    health_result_free(&r);

    CHECK(assess("{\"input\": {\"systems_in_sync\": false}, \"vars\": {\"threshold\": 20}}", &r, err) == 0, "%s", err);
    CHECK(r.score == 20 && strcmp(label(&r, "late"), "true") == 0, "vars.threshold is honoured");
    CHECK(strcmp(label(&r, "unscored"), "stage_time,owner_workload,similar_anomaly_rate") == 0, "unscored=%s", label(&r, "unscored"));
    health_result_free(&r);

    CHECK(assess("{}", &r, err) == 0, "%s", err);
    CHECK(r.score == 0 && strcmp(label(&r, "late"), "false") == 0, "empty order");
    health_result_free(&r);

    CHECK(assess("[1,2]", &r, err) == -1, "an array is an error");
    CHECK(strstr(err, "JSON object") != NULL, "%s", err);
    CHECK(assess("{\"a\": }", &r, err) == -2, "bad JSON");
    CHECK(strstr(err, "at byte 6") != NULL, "%s", err);
}

static void test_json(void) {
    char err[128];
    const char *text = "{\"s\": \"a\\u00e9\\ud83d\\ude00\\n\u4e2d\", \"n\": -1.5e2, \"b\": [true, null], \"d\": {\"x\": \"12\"}}";
    json_value *v = json_parse(text, strlen(text), err, sizeof err);
    CHECK(v != NULL, "%s", err);
    if (!v) return;
    CHECK(strcmp(json_str(json_get(v, "s")), "a\xc3\xa9\xf0\x9f\x98\x80\n\xe4\xb8\xad") == 0, "unicode escapes");
    double n;
    CHECK(json_num(json_get(v, "n"), &n) && n == -150, "number");
    CHECK(json_num(json_path(v, "d.x"), &n) && n == 12, "numeric string");
    CHECK(json_get(v, "b")->count == 2 && json_bool(json_get(v, "b")->items[0]) == 1, "array");
    json_free(v);
    const char *bad[] = {"", "{", "[1,]", "{\"a\" 1}", "\"\x01\"", "01", "1 2", "tru", "\"\\x\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = json_parse(bad[i], strlen(bad[i]), err, sizeof err);
        CHECK(v == NULL, "'%s' must not parse", bad[i]);
        json_free(v);
    }
    char deep[300];
    memset(deep, '[', 200);
    deep[200] = '\0';
    CHECK(json_parse(deep, 200, err, sizeof err) == NULL && strstr(err, "deeper"), "depth limit: %s", err);
}

static void test_time(void) {
    long long t;
    char buf[32];
    CHECK(rfc3339_parse("1970-01-01T00:00:00Z", &t) && t == 0, "epoch");
    CHECK(rfc3339_parse("2024-05-10T12:00:00Z", &t) && t == 1715342400LL, "2024-05-10T12Z = %lld", t);
    CHECK(rfc3339_parse("2024-05-10T20:00:00.123+08:00", &t) && t == 1715342400LL, "offset");
    CHECK(rfc3339_parse("2024-05-10", &t) && t == 1715299200LL, "date only");
    CHECK(!rfc3339_parse("2024-05-10T12:00", &t) && !rfc3339_parse("next week", &t) && !rfc3339_parse(NULL, &t), "bad times");
    rfc3339_format(1715342400LL - 36 * 3600, buf, sizeof buf);
    CHECK(strcmp(buf, "2024-05-09T00:00:00Z") == 0, "%s", buf);
    rfc3339_format(951782400LL, buf, sizeof buf);
    CHECK(strcmp(buf, "2000-02-29T00:00:00Z") == 0, "leap day %s", buf);
}

static void test_fmt(void) {
    char b[64], small[5];
    fmt(b, sizeof b, "%s|%d|%zu|%lld|%c|%%", "x", -42, (size_t)7, -9000000000LL, 'q');
    CHECK(strcmp(b, "x|-42|7|-9000000000|q|%") == 0, "%s", b);
    fmt(b, sizeof b, "%.0f|%.1f|%.2f|%f|%g|%g|%g", 33.333, 50.04, -0.004, 1.5, 72.0, 0.125, 1e20);
    CHECK(strcmp(b, "33|50.0|-0.00|1.500000|72|0.125|1e20") == 0, "%s", b);
    fmt(b, sizeof b, "%04lld-%02u|%5s|%-3d|", 2024LL, 5u, "ab", 7);
    CHECK(strcmp(b, "2024-05|   ab|7  |") == 0, "%s", b);
    CHECK(fmt(small, sizeof small, "%s", "truncated") == 9 && strcmp(small, "trun") == 0, "truncation");
}

int main(void) {
    test_fmt();
    test_json();
    test_time();
    test_samples();
    test_edges();
    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("order-health-score: all checks passed\n");
    return 0;
}
