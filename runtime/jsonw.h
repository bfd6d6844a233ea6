/*
 * bulwark internal: a JSON writer into a caller's buffer, the one copy for
 * the health monitor's snapshot, the tree walk and the metrics' JSON
 * exposition (observe/expo.c, which escapes its strings with bw__jw_str). Like snprintf, it never writes past cap but counts every byte, so
 * the caller learns the length it needs (len > cap: too small). Strings are
 * escaped (quote, backslash, and newline, return and tab with JSON's short
 * forms, as the metrics' copy did; other controls as \u00XX), and bytes that
 * are not valid UTF-8 become U+FFFD, as this copy did, so the output is
 * valid JSON whatever bytes a name holds.
 */
#ifndef BW_RUNTIME_JSONW_H
#define BW_RUNTIME_JSONW_H

#include <stddef.h>

typedef struct bw__jw {
  char *b;
  size_t cap, len;
} bw__jw_t;

void bw__jw_raw(bw__jw_t *w, const char *s, size_t n);
void bw__jw_lit(bw__jw_t *w, const char *s);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void bw__jw_fmt(bw__jw_t *w, const char *fmt, ...);
void bw__jw_str(bw__jw_t *w, const char *s); /* a quoted, escaped string; NULL = "" */

#endif
