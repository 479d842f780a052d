/* The order health score (DOMAIN.md playbook 2) as a pure function over parsed JSON.
 * plugin.c wraps it in the component; test/test_health.c runs it natively. */
#ifndef WAYSTATION_HEALTH_H
#define WAYSTATION_HEALTH_H

#include <stddef.h>
#include "json.h"

#define HEALTH_MAX_REASONS 16
#define HEALTH_MAX_LABELS 12

typedef struct {
    double score;
    size_t n_reasons, n_labels;
    char *reasons[HEALTH_MAX_REASONS];            /* malloc'd */
    char *label_keys[HEALTH_MAX_LABELS];          /* malloc'd */
    char *label_values[HEALTH_MAX_LABELS];        /* malloc'd */
    const char *order_no;                         /* borrowed from the document, may be NULL */
} health_result;

/* Scores `doc` (the engine's envelope or a bare order). Returns 0 on success; on failure
 * returns -1 with a message in `err`. */
int health_assess(const json_value *doc, health_result *out, char *err, size_t err_size);
void health_result_free(health_result *r);
/* The value of label `key`, or NULL. */
const char *health_label(const health_result *r, const char *key);

/* RFC 3339 date-time (or a plain YYYY-MM-DD, as midnight UTC) to Unix seconds. 0 = bad. */
int rfc3339_parse(const char *s, long long *out);
/* Unix seconds to "YYYY-MM-DDTHH:MM:SSZ" (buf of at least 21 bytes). */
void rfc3339_format(long long t, char *buf, size_t size);

#endif
