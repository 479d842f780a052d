#include "fmt.h"

#include <math.h>
#include <string.h>

typedef struct {
    char *out;
    size_t size, len; /* len counts everything, even past size */
} sink;

static void put(sink *s, char c) {
    if (s->len + 1 < s->size) s->out[s->len] = c;
    s->len++;
}

static void put_padded(sink *s, const char *text, size_t n, int width, int left, char pad) {
    /* A zero pad goes after the sign. */
    if (pad == '0' && !left && n > 0 && text[0] == '-') {
        put(s, '-');
        text++, n--, width--;
    }
    if (!left) for (int i = (int)n; i < width; i++) put(s, pad);
    for (size_t i = 0; i < n; i++) put(s, text[i]);
    if (left) for (int i = (int)n; i < width; i++) put(s, ' ');
}

static size_t utoa(unsigned long long v, char *buf) {
    char tmp[24];
    size_t n = 0;
    do tmp[n++] = (char)('0' + v % 10); while (v /= 10);
    for (size_t i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    return n;
}

/* Fixed-point with `prec` decimals, rounding half away from zero. */
static size_t ftoa(double v, int prec, int trim, char *buf) {
    size_t n = 0;
    if (isnan(v)) { memcpy(buf, "nan", 3); return 3; }
    if (v < 0) { buf[n++] = '-'; v = -v; }
    if (isinf(v)) { memcpy(buf + n, "inf", 3); return n + 3; }
    if (prec > 9) prec = 9;
    if (v >= 1e18) { /* out of range for the integer path: no decimals */
        int exp10 = 0;
        while (v >= 10) { v /= 10; exp10++; }
        n += utoa((unsigned long long)v, buf + n);
        buf[n++] = 'e';
        return n + utoa((unsigned long long)exp10, buf + n);
    }
    double scale = 1;
    for (int i = 0; i < prec; i++) scale *= 10;
    double whole = floor(v);
    double frac = round((v - whole) * scale);
    if (frac >= scale) { whole += 1; frac -= scale; }
    n += utoa((unsigned long long)whole, buf + n);
    if (prec > 0) {
        char digits[12];
        unsigned long long f = (unsigned long long)frac;
        for (int i = prec - 1; i >= 0; i--) { digits[i] = (char)('0' + f % 10); f /= 10; }
        int keep = prec;
        if (trim) while (keep > 0 && digits[keep - 1] == '0') keep--;
        if (keep > 0) {
            buf[n++] = '.';
            memcpy(buf + n, digits, (size_t)keep);
            n += (size_t)keep;
        }
    }
    if (n == 2 && buf[0] == '-' && buf[1] == '0') { buf[0] = '0'; n = 1; } /* no "-0" */
    return n;
}

size_t vfmt(char *out, size_t size, const char *f, va_list ap) {
    sink s = {out, size, 0};
    char buf[48];
    for (; *f; f++) {
        if (*f != '%') { put(&s, *f); continue; }
        f++;
        int left = 0, width = 0, prec = -1, lng = 0;
        char pad = ' ';
        for (;; f++) {
            if (*f == '-') left = 1;
            else if (*f == '0') pad = '0';
            else break;
        }
        while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
        if (*f == '.') {
            prec = 0;
            f++;
            while (*f >= '0' && *f <= '9') prec = prec * 10 + (*f++ - '0');
        }
        int size_t_arg = 0;
        while (*f == 'l' || *f == 'z') { if (*f == 'z') size_t_arg = 1; else lng++; f++; }
        size_t n;
        switch (*f) {
        case '%': put(&s, '%'); break;
        case 'c': buf[0] = (char)va_arg(ap, int); put_padded(&s, buf, 1, width, left, ' '); break;
        case 's': {
            const char *str = va_arg(ap, const char *);
            if (!str) str = "(null)";
            n = strlen(str);
            if (prec >= 0 && (size_t)prec < n) n = (size_t)prec;
            put_padded(&s, str, n, width, left, ' ');
            break;
        }
        case 'd': case 'i': {
            long long v = size_t_arg ? (long long)va_arg(ap, size_t) : lng >= 2 ? va_arg(ap, long long) : lng == 1 ? va_arg(ap, long) : va_arg(ap, int);
            n = 0;
            unsigned long long u = (unsigned long long)v;
            if (v < 0) { buf[n++] = '-'; u = 0ULL - u; }
            n += utoa(u, buf + n);
            put_padded(&s, buf, n, width, left, pad);
            break;
        }
        case 'u': {
            unsigned long long v = size_t_arg ? va_arg(ap, size_t) : lng >= 2 ? va_arg(ap, unsigned long long) : lng == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            n = utoa(v, buf);
            put_padded(&s, buf, n, width, left, pad);
            break;
        }
        case 'f': n = ftoa(va_arg(ap, double), prec < 0 ? 6 : prec, 0, buf); put_padded(&s, buf, n, width, left, pad); break;
        case 'g': n = ftoa(va_arg(ap, double), 6, 1, buf); put_padded(&s, buf, n, width, left, pad); break;
        default: /* unknown: print it as is */
            put(&s, '%');
            if (*f) put(&s, *f);
            else f--;
        }
    }
    if (size) out[s.len < size ? s.len : size - 1] = '\0';
    return s.len;
}

size_t fmt(char *out, size_t size, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    size_t n = vfmt(out, size, format, ap);
    va_end(ap);
    return n;
}
