/*
 * Server-sent events (text/event-stream) as the HTTP client streams them:
 * a small incremental parser (include/bulwark/http.h). Events end with an
 * empty line; their "data:" lines are joined with \n; other fields and
 * comments (":") are skipped. CRLF, LF and CR line ends are accepted.
 */
#include <stdlib.h>
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/http.h"

void bw_sse_init(bw_sse_t *p, size_t max) {
  if (p == NULL)
    return;
  memset(p, 0, sizeof *p);
  p->max = max ? max : 1u << 20;
}

void bw_sse_free(bw_sse_t *p) {
  if (p == NULL)
    return;
  free(p->buf);
  memset(p, 0, sizeof *p);
}

int bw_sse_feed(bw_sse_t *p, const void *data, size_t len) {
  if (p == NULL || (data == NULL && len > 0))
    return BW_EINVAL;
  if (p->len + len > p->max) {
    p->len = 0; /* the event in progress is lost: say so, keep going */
    return BW_ETOOBIG;
  }
  if (p->len + len + 1 > p->cap) {
    size_t nc = p->cap ? p->cap : 256;
    while (nc < p->len + len + 1)
      nc *= 2;
    char *nb = realloc(p->buf, nc);
    if (nb == NULL)
      return BW_ENOMEM;
    p->buf = nb;
    p->cap = nc;
  }
  memcpy(p->buf + p->len, data, len);
  p->len += len;
  return 0;
}

/* Where the event that starts the buffer ends (after its blank line), or
 * 0 while no whole event waits. A CR last in the buffer waits for what
 * follows it (it may be half of a CRLF). */
static size_t event_end(const char *b, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t e = i;
    while (e < n && b[e] != '\n' && b[e] != '\r')
      e++;
    if (e == n)
      return 0;
    size_t next = e + 1;
    if (b[e] == '\r') {
      if (next == n)
        return 0;
      if (b[next] == '\n')
        next++;
    }
    if (e == i)
      return next; /* the blank line */
    i = next;
  }
  return 0;
}

int bw_sse_next(bw_sse_t *p, char *out, size_t cap) {
  if (p == NULL || (out == NULL && cap > 0))
    return BW_EINVAL;
  for (;;) {
    size_t end = event_end(p->buf, p->len);
    if (end == 0)
      return 0;
    size_t olen = 0;
    bool any = false;
    for (size_t i = 0; i < end;) {
      size_t e = i;
      while (e < end && p->buf[e] != '\n' && p->buf[e] != '\r')
        e++;
      const char *line = p->buf + i;
      size_t ll = e - i;
      if (ll >= 5 && memcmp(line, "data:", 5) == 0) {
        const char *v = line + 5;
        size_t vl = ll - 5;
        if (vl > 0 && *v == ' ')
          v++, vl--;
        if (any && cap > 0 && olen + 1 < cap)
          out[olen] = '\n';
        olen += any ? 1 : 0;
        for (size_t k = 0; k < vl; k++, olen++)
          if (cap > 0 && olen + 1 < cap)
            out[olen] = v[k];
        any = true;
      }
      i = e;
      if (i < end && p->buf[i] == '\r')
        i++;
      if (i < end && p->buf[i] == '\n')
        i++;
    }
    memmove(p->buf, p->buf + end, p->len - end);
    p->len -= end;
    if (!any)
      continue; /* no data: nothing to hand out */
    if (cap > 0)
      out[olen < cap ? olen : cap - 1] = '\0';
    return olen > (size_t)INT32_MAX ? INT32_MAX : (int)olen;
  }
}
