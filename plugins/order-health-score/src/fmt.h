/* A tiny snprintf for the plugin. wasi-libc's printf family pulls in stderr (and with it
 * the WASI fd_write / fd_seek / fd_close imports) even for snprintf, which would make the
 * component import WASI. This formatter has no such dependency.
 *
 * Supports %% %c %s %d %u (with l, ll, z), %f and %g, flags '0' and '-', a width and a
 * precision. %g is simplified: at most 6 decimals, trailing zeros dropped. */
#ifndef WAYSTATION_FMT_H
#define WAYSTATION_FMT_H

#include <stdarg.h>
#include <stddef.h>

size_t fmt(char *out, size_t size, const char *format, ...) __attribute__((format(printf, 3, 4)));
size_t vfmt(char *out, size_t size, const char *format, va_list ap);

#endif
