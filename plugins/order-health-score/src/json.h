/* A small JSON reader for plugins: parses a whole document into a tree.
 * No dependencies beyond libc, so it builds for wasm32-wasi and for the host (tests). */
#ifndef WAYSTATION_JSON_H
#define WAYSTATION_JSON_H

#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value {
    json_type type;
    int boolean;              /* JSON_BOOL */
    double number;            /* JSON_NUMBER */
    char *string;             /* JSON_STRING: UTF-8, NUL-terminated (len excludes the NUL) */
    size_t len;
    size_t count;             /* JSON_ARRAY / JSON_OBJECT: number of items */
    char **keys;              /* JSON_OBJECT: keys, parallel to items */
    struct json_value **items;
} json_value;

/* Parses `len` bytes. Returns NULL and writes a message to `err` on failure. */
json_value *json_parse(const char *text, size_t len, char *err, size_t err_size);
void json_free(json_value *v);

/* The member `key` of an object (the last one if repeated), or NULL. */
const json_value *json_get(const json_value *object, const char *key);
/* Follows a dotted path of object keys, e.g. "progress.stage"; NULL if any step is missing. */
const json_value *json_path(const json_value *v, const char *dotted);
/* The string, or NULL if `v` is not a string. */
const char *json_str(const json_value *v);
/* 1 and *out if `v` is a number (or a string holding one), else 0. */
int json_num(const json_value *v, double *out);
/* 1 if `v` is true or the string "true", 0 if false / "false", -1 otherwise. */
int json_bool(const json_value *v);

#endif
