#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include "fmt.h"
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t err_size;
    int failed;
} parser;

static void fail(parser *p, const char *format, ...) {
    if (p->failed) return;
    p->failed = 1;
    if (!p->err || !p->err_size) return;
    char msg[160];
    va_list ap;
    va_start(ap, format);
    vfmt(msg, sizeof msg, format, ap);
    va_end(ap);
    fmt(p->err, p->err_size, "%s at byte %zu", msg, p->pos);
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static json_value *new_value(parser *p, json_type t) {
    json_value *v = calloc(1, sizeof *v);
    if (!v) fail(p, "out of memory");
    else v->type = t;
    return v;
}

static int hex4(parser *p, unsigned *out) {
    if (p->pos + 4 > p->len) return 0;
    unsigned u = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        u <<= 4;
        if (c >= '0' && c <= '9') u |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') u |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') u |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    p->pos += 4;
    *out = u;
    return 1;
}

static size_t utf8_put(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* Parses a string starting at the opening quote; returns a malloc'd buffer. */
static char *parse_string_raw(parser *p, size_t *out_len) {
    p->pos++; /* opening quote */
    /* The decoded string is never longer than the encoded one. */
    size_t start = p->pos, cap = 1;
    while (p->pos < p->len && p->s[p->pos] != '"') {
        if (p->s[p->pos] == '\\') p->pos++;
        p->pos++;
    }
    cap += p->pos - start;
    p->pos = start;
    char *buf = malloc(cap), *o = buf;
    if (!buf) { fail(p, "out of memory"); return NULL; }
    for (;;) {
        if (p->pos >= p->len) { fail(p, "unterminated string"); free(buf); return NULL; }
        unsigned char c = (unsigned char)p->s[p->pos++];
        if (c == '"') break;
        if (c < 0x20) { p->pos--; fail(p, "control character in string"); free(buf); return NULL; }
        if (c != '\\') { *o++ = (char)c; continue; }
        if (p->pos >= p->len) { fail(p, "unterminated string"); free(buf); return NULL; }
        char e = p->s[p->pos++];
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp;
            if (!hex4(p, &cp)) { fail(p, "bad \\u escape"); free(buf); return NULL; }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (p->pos + 2 <= p->len && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
                    p->pos += 2;
                    if (!hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) { fail(p, "bad surrogate pair"); free(buf); return NULL; }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    cp = 0xFFFD; /* lone high surrogate */
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD; /* lone low surrogate */
            }
            /* "\uXXXX" is 6 bytes and its UTF-8 at most 3; a pair is 12 bytes for 4. */
            o += utf8_put(o, cp);
            break;
        }
        default: p->pos--; fail(p, "bad escape"); free(buf); return NULL;
        }
    }
    *o = '\0';
    *out_len = (size_t)(o - buf);
    return buf;
}

static json_value *parse_value(parser *p, int depth);

static int push(parser *p, json_value *parent, char *key, json_value *item, size_t *cap) {
    if (parent->count == *cap) {
        size_t n = *cap ? *cap * 2 : 8;
        json_value **items = realloc(parent->items, n * sizeof *items);
        if (!items) { fail(p, "out of memory"); return 0; }
        parent->items = items;
        if (parent->type == JSON_OBJECT) {
            char **keys = realloc(parent->keys, n * sizeof *keys);
            if (!keys) { fail(p, "out of memory"); return 0; }
            parent->keys = keys;
        }
        *cap = n;
    }
    if (parent->type == JSON_OBJECT) parent->keys[parent->count] = key;
    parent->items[parent->count++] = item;
    return 1;
}

static json_value *parse_container(parser *p, int depth, int object) {
    json_value *v = new_value(p, object ? JSON_OBJECT : JSON_ARRAY);
    if (!v) return NULL;
    size_t cap = 0;
    p->pos++; /* [ or { */
    skip_ws(p);
    char close = object ? '}' : ']';
    if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; return v; }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (object) {
            size_t klen;
            if (p->pos >= p->len || p->s[p->pos] != '"') { fail(p, "expected a string key"); break; }
            key = parse_string_raw(p, &klen);
            if (!key) break;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') { fail(p, "expected ':'"); free(key); break; }
            p->pos++;
        }
        json_value *item = parse_value(p, depth + 1);
        if (!item) { free(key); break; }
        if (!push(p, v, key, item, &cap)) { free(key); json_free(item); break; }
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') { p->pos++; continue; }
        if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; return v; }
        fail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        break;
    }
    json_free(v);
    return NULL;
}

static json_value *parse_number(parser *p) {
    size_t start = p->pos;
    if (p->s[p->pos] == '-') p->pos++;
    if (p->pos >= p->len) { fail(p, "bad number"); return NULL; }
    if (p->s[p->pos] == '0') p->pos++;
    else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    else { fail(p, "bad number"); return NULL; }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') { fail(p, "bad number"); return NULL; }
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') { fail(p, "bad number"); return NULL; }
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    char tmp[64];
    size_t n = p->pos - start;
    if (n >= sizeof tmp) { p->pos = start; fail(p, "number too long"); return NULL; }
    memcpy(tmp, p->s + start, n);
    tmp[n] = '\0';
    json_value *v = new_value(p, JSON_NUMBER);
    if (v) v->number = strtod(tmp, NULL);
    return v;
}

static int literal(parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->pos + n <= p->len && memcmp(p->s + p->pos, word, n) == 0) { p->pos += n; return 1; }
    return 0;
}

static json_value *parse_value(parser *p, int depth) {
    if (depth > MAX_DEPTH) { fail(p, "nested deeper than %d", MAX_DEPTH); return NULL; }
    skip_ws(p);
    if (p->pos >= p->len) { fail(p, "unexpected end of input"); return NULL; }
    char c = p->s[p->pos];
    json_value *v;
    switch (c) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"':
        v = new_value(p, JSON_STRING);
        if (!v) return NULL;
        v->string = parse_string_raw(p, &v->len);
        if (!v->string) { free(v); return NULL; }
        return v;
    case 't': case 'f':
        if (literal(p, "true") || literal(p, "false")) {
            v = new_value(p, JSON_BOOL);
            if (v) v->boolean = c == 't';
            return v;
        }
        break;
    case 'n':
        if (literal(p, "null")) return new_value(p, JSON_NULL);
        break;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(p);
    }
    fail(p, "unexpected character '%c'", c);
    return NULL;
}

json_value *json_parse(const char *text, size_t len, char *err, size_t err_size) {
    parser p = {text, len, 0, err, err_size, 0};
    if (err && err_size) err[0] = '\0';
    /* A UTF-8 byte-order mark is tolerated. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) p.pos = 3;
    json_value *v = parse_value(&p, 0);
    if (!v) return NULL;
    skip_ws(&p);
    if (p.pos != p.len) {
        fail(&p, "trailing characters after the JSON value");
        json_free(v);
        return NULL;
    }
    return v;
}

void json_free(json_value *v) {
    if (!v) return;
    for (size_t i = 0; i < v->count; i++) {
        json_free(v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->string);
    free(v);
}

const json_value *json_get(const json_value *o, const char *key) {
    if (!o || o->type != JSON_OBJECT) return NULL;
    for (size_t i = o->count; i-- > 0;)
        if (strcmp(o->keys[i], key) == 0) return o->items[i];
    return NULL;
}

const json_value *json_path(const json_value *v, const char *dotted) {
    char key[128];
    while (v && *dotted) {
        const char *dot = strchr(dotted, '.');
        size_t n = dot ? (size_t)(dot - dotted) : strlen(dotted);
        if (n >= sizeof key) return NULL;
        memcpy(key, dotted, n);
        key[n] = '\0';
        v = json_get(v, key);
        dotted += n + (dot ? 1 : 0);
    }
    return v;
}

const char *json_str(const json_value *v) {
    return v && v->type == JSON_STRING ? v->string : NULL;
}

int json_num(const json_value *v, double *out) {
    if (!v) return 0;
    if (v->type == JSON_NUMBER) { *out = v->number; return 1; }
    if (v->type == JSON_STRING && v->len > 0) {
        char *end;
        errno = 0;
        double d = strtod(v->string, &end);
        while (*end == ' ') end++;
        if (errno == 0 && *end == '\0' && end != v->string && d == d) { *out = d; return 1; }
    }
    return 0;
}

int json_bool(const json_value *v) {
    if (!v) return -1;
    if (v->type == JSON_BOOL) return v->boolean;
    if (v->type == JSON_STRING) {
        if (strcmp(v->string, "true") == 0) return 1;
        if (strcmp(v->string, "false") == 0) return 0;
    }
    return -1;
}
