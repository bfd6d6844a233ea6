/*
 * bulwark: the JSON writer (jsonw.h).
 */
#include "runtime/jsonw.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void bw__jw_raw(bw__jw_t *w, const char *s, size_t n) {
  if (w->len < w->cap) {
    size_t room = w->cap - w->len;
    memcpy(w->b + w->len, s, n < room ? n : room);
  }
  w->len += n;
}

void bw__jw_lit(bw__jw_t *w, const char *s) { bw__jw_raw(w, s, strlen(s)); }

void bw__jw_fmt(bw__jw_t *w, const char *fmt, ...) {
  char tmp[96];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0)
    bw__jw_raw(w, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one (then the
 * byte is replaced: names cut to fit a buffer may end mid-sequence). */
static size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 0;
  if (c >= 0xF5)
    n = 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80)
      return 0;
  return n;
}

void bw__jw_str(bw__jw_t *w, const char *s) {
  bw__jw_raw(w, "\"", 1);
  const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");
  while (*p != '\0') {
    unsigned c = *p;
    if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t') {
      char e[2] = {'\\', c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : (char)c};
      bw__jw_raw(w, e, 2);
      p++;
    } else if (c < 0x20) {
      bw__jw_fmt(w, "\\u%04x", c);
      p++;
    } else if (c < 0x80) {
      bw__jw_raw(w, (const char *)p, 1);
      p++;
    } else {
      size_t n = utf8_len(p);
      if (n == 0) {
        bw__jw_lit(w, "\\ufffd");
        p++;
      } else {
        bw__jw_raw(w, (const char *)p, n);
        p += n;
      }
    }
  }
  bw__jw_raw(w, "\"", 1);
}
