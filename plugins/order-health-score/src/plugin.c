/* The order-health-score component: waystation:plugin/scorer in C.
 * Bindings come from `wit-bindgen c` (generated into build/ by build.sh). */
#include "fmt.h"
#include <stdlib.h>
#include <string.h>

#include "scorer.h"
#include "json.h"
#include "health.h"

static void log_line(scorer_level_t level, const char *text) {
    scorer_string_t s;
    scorer_string_set(&s, text); /* borrowed: the host copies it */
    scorer_log(level, &s);
}

bool exports_scorer_score(scorer_string_t *input, scorer_assessment_t *ret, scorer_string_t *err) {
    char msg[256];
    json_value *doc = json_parse((const char *)input->ptr, input->len, msg, sizeof msg);
    scorer_string_free(input); /* the callee owns the argument */
    if (!doc) {
        char full[300];
        fmt(full, sizeof full, "input is not valid JSON: %s", msg);
        char line[340];
        fmt(line, sizeof line, "order-health-score: %s", full);
        log_line(WAYSTATION_PLUGIN_TYPES_LEVEL_WARN, line);
        scorer_string_dup(err, full); /* results are freed by the generated post-return */
        return false;
    }

    health_result r;
    if (health_assess(doc, &r, msg, sizeof msg) != 0) {
        char line[300];
        fmt(line, sizeof line, "order-health-score: %s", msg);
        log_line(WAYSTATION_PLUGIN_TYPES_LEVEL_WARN, line);
        scorer_string_dup(err, msg);
        json_free(doc);
        return false;
    }

    char line[200];
    fmt(line, sizeof line, "order-health-score: %s scored %.0f (%s), late=%s",
             r.order_no ? r.order_no : "order", r.score, health_label(&r, "band"), health_label(&r, "late"));
    log_line(WAYSTATION_PLUGIN_TYPES_LEVEL_INFO, line);

    ret->score = r.score;
    ret->reasons.len = r.n_reasons;
    ret->reasons.ptr = r.n_reasons ? calloc(r.n_reasons, sizeof(scorer_string_t)) : NULL;
    for (size_t i = 0; i < r.n_reasons; i++) scorer_string_dup(&ret->reasons.ptr[i], r.reasons[i]);
    ret->labels.len = r.n_labels;
    ret->labels.ptr = r.n_labels ? calloc(r.n_labels, sizeof(waystation_plugin_types_label_t)) : NULL;
    for (size_t i = 0; i < r.n_labels; i++) {
        scorer_string_dup(&ret->labels.ptr[i].key, r.label_keys[i]);
        scorer_string_dup(&ret->labels.ptr[i].value, r.label_values[i]);
    }
    health_result_free(&r);
    json_free(doc);
    return true;
}
