/*
 * The JSON reader (json.h): recursive descent over the text, one node per
 * value. Depth is bounded (JSON_MAX_DEPTH), so a hostile file cannot
 * exhaust the stack.
 */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct parser {
  const char *s;
  size_t len;
  size_t pos;
  char *err;
  size_t cap;
  bool failed;
} parser_t;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void fail(parser_t *p, const char *fmt, ...)
{
  if (p->failed)
    return;
  p->failed = true;
  size_t line = 1, col = 1;
  for (size_t i = 0; i < p->pos && i < p->len; i++) {
    if (p->s[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  int w = snprintf(p->err, p->cap, "line %zu, column %zu: ", line, col);
  if (w < 0 || (size_t)w >= p->cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + w, p->cap - (size_t)w, fmt, ap);
  va_end(ap);
}

static void skip_ws(parser_t *p)
{
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    p->pos++;
  }
}

static int peek(const parser_t *p)
{
  return p->pos < p->len ? (unsigned char)p->s[p->pos] : -1;
}

static json_t *node(parser_t *p, json_kind_t kind)
{
  json_t *v = calloc(1, sizeof *v);
  if (!v)
    fail(p, "out of memory");
  else
    v->kind = kind;
  return v;
}

static bool literal(parser_t *p, const char *word)
{
  size_t n = strlen(word);
  if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
    return false;
  p->pos += n;
  return true;
}

static int hex4(parser_t *p, uint32_t *out)
{
  if (p->len - p->pos < 4) {
    fail(p, "truncated \\u escape");
    return -1;
  }
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p->s[p->pos++];
    v <<= 4;
    if (c >= '0' && c <= '9')
      v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v |= (uint32_t)(c - 'A' + 10);
    else {
      fail(p, "bad hex digit in \\u escape");
      return -1;
    }
  }
  *out = v;
  return 0;
}

static size_t utf8_put(char *out, uint32_t cp)
{
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* At the opening quote. Returns a malloc'd, decoded string, or NULL. The
 * decoded text is never longer than the escaped one (a 6-byte \uXXXX
 * gives at most 3 bytes, a 12-byte pair 4), so one buffer of the raw
 * length is enough. */
static char *string(parser_t *p)
{
  p->pos++; /* the quote */
  size_t start = p->pos;
  while (p->pos < p->len && p->s[p->pos] != '"') {
    if (p->s[p->pos] == '\\')
      p->pos++;
    p->pos++;
  }
  if (p->pos >= p->len) {
    fail(p, "unterminated string");
    return NULL;
  }
  size_t end = p->pos;
  char *out = malloc(end - start + 1);
  if (!out) {
    fail(p, "out of memory");
    return NULL;
  }
  size_t n = 0;
  p->pos = start;
  while (p->pos < end) {
    unsigned char c = (unsigned char)p->s[p->pos++];
    if (c < 0x20) {
      p->pos--;
      fail(p, "control character in a string");
      goto bad;
    }
    if (c != '\\') {
      out[n++] = (char)c;
      continue;
    }
    char e = p->s[p->pos++];
    switch (e) {
    case '"': out[n++] = '"'; break;
    case '\\': out[n++] = '\\'; break;
    case '/': out[n++] = '/'; break;
    case 'b': out[n++] = '\b'; break;
    case 'f': out[n++] = '\f'; break;
    case 'n': out[n++] = '\n'; break;
    case 'r': out[n++] = '\r'; break;
    case 't': out[n++] = '\t'; break;
    case 'u': {
      uint32_t cp;
      if (hex4(p, &cp) != 0)
        goto bad;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        uint32_t lo;
        if (p->pos + 2 > end || p->s[p->pos] != '\\' ||
            p->s[p->pos + 1] != 'u') {
          fail(p, "unpaired surrogate in \\u escape");
          goto bad;
        }
        p->pos += 2;
        if (hex4(p, &lo) != 0)
          goto bad;
        if (lo < 0xDC00 || lo > 0xDFFF) {
          fail(p, "unpaired surrogate in \\u escape");
          goto bad;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        fail(p, "unpaired surrogate in \\u escape");
        goto bad;
      }
      n += utf8_put(out + n, cp);
      break;
    }
    default:
      p->pos--;
      fail(p, "bad escape '\\%c'", e);
      goto bad;
    }
  }
  out[n] = '\0';
  p->pos = end + 1;
  return out;
bad:
  free(out);
  return NULL;
}

/* The grammar of RFC 8259 section 6, checked before strtod converts. */
static json_t *number(parser_t *p)
{
  size_t start = p->pos;
  if (peek(p) == '-')
    p->pos++;
  if (peek(p) == '0') {
    p->pos++;
  } else if (peek(p) >= '1' && peek(p) <= '9') {
    while (peek(p) >= '0' && peek(p) <= '9')
      p->pos++;
  } else {
    fail(p, "bad number");
    return NULL;
  }
  if (peek(p) == '.') {
    p->pos++;
    if (!(peek(p) >= '0' && peek(p) <= '9')) {
      fail(p, "bad number: no digit after '.'");
      return NULL;
    }
    while (peek(p) >= '0' && peek(p) <= '9')
      p->pos++;
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    p->pos++;
    if (peek(p) == '+' || peek(p) == '-')
      p->pos++;
    if (!(peek(p) >= '0' && peek(p) <= '9')) {
      fail(p, "bad number: no digit in the exponent");
      return NULL;
    }
    while (peek(p) >= '0' && peek(p) <= '9')
      p->pos++;
  }
  char buf[64];
  size_t n = p->pos - start;
  if (n >= sizeof buf) {
    p->pos = start;
    fail(p, "number too long");
    return NULL;
  }
  memcpy(buf, p->s + start, n);
  buf[n] = '\0';
  errno = 0;
  double d = strtod(buf, NULL);
  if (!isfinite(d)) {
    p->pos = start;
    fail(p, "number out of range");
    return NULL;
  }
  json_t *v = node(p, JSON_NUMBER);
  if (v)
    v->number = d;
  return v;
}

static json_t *value(parser_t *p, int depth);

static json_t *container(parser_t *p, int depth, bool object)
{
  char close = object ? '}' : ']';
  json_t *v = node(p, object ? JSON_OBJECT : JSON_ARRAY);
  if (!v)
    return NULL;
  p->pos++; /* the opening bracket */
  skip_ws(p);
  if (peek(p) == close) {
    p->pos++;
    return v;
  }
  json_t **tail = &v->child;
  for (;;) {
    char *key = NULL;
    skip_ws(p);
    if (object) {
      if (peek(p) != '"') {
        fail(p, "expected a member name (a string)");
        break;
      }
      key = string(p);
      if (!key)
        break;
      skip_ws(p);
      if (peek(p) != ':') {
        free(key);
        fail(p, "expected ':' after a member name");
        break;
      }
      p->pos++;
    }
    json_t *item = value(p, depth + 1);
    if (!item) {
      free(key);
      break;
    }
    item->key = key;
    *tail = item;
    tail = &item->next;
    skip_ws(p);
    if (peek(p) == ',') {
      p->pos++;
      continue;
    }
    if (peek(p) == close) {
      p->pos++;
      return v;
    }
    fail(p, "expected ',' or '%c'", close);
    break;
  }
  json_free(v);
  return NULL;
}

static json_t *value(parser_t *p, int depth)
{
  if (depth > JSON_MAX_DEPTH) {
    fail(p, "nested deeper than %d", JSON_MAX_DEPTH);
    return NULL;
  }
  skip_ws(p);
  int c = peek(p);
  switch (c) {
  case '{': return container(p, depth, true);
  case '[': return container(p, depth, false);
  case '"': {
    char *s = string(p);
    if (!s)
      return NULL;
    json_t *v = node(p, JSON_STRING);
    if (!v) {
      free(s);
      return NULL;
    }
    v->string = s;
    return v;
  }
  case 't':
  case 'f': {
    bool b = c == 't';
    if (!literal(p, b ? "true" : "false"))
      break;
    json_t *v = node(p, JSON_BOOL);
    if (v)
      v->boolean = b;
    return v;
  }
  case 'n':
    if (!literal(p, "null"))
      break;
    return node(p, JSON_NULL);
  case -1:
    fail(p, "unexpected end of text");
    return NULL;
  default:
    if (c == '-' || (c >= '0' && c <= '9'))
      return number(p);
    break;
  }
  fail(p, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
  return NULL;
}

json_t *json_parse(const char *text, size_t len, char *err, size_t cap)
{
  parser_t p = {.s = text, .len = len, .err = err, .cap = cap};
  if (cap)
    err[0] = '\0';
  json_t *root = value(&p, 0);
  if (!root)
    return NULL;
  skip_ws(&p);
  if (p.pos != p.len) {
    fail(&p, "text after the value");
    json_free(root);
    return NULL;
  }
  return root;
}

json_t *json_parse_file(const char *path, char *err, size_t cap)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, cap, "cannot open: %s", strerror(errno));
    return NULL;
  }
  size_t size = 0, room = 1 << 16;
  char *buf = malloc(room);
  while (buf) {
    size_t n = fread(buf + size, 1, room - size, f);
    size += n;
    if (size < room)
      break;
    if (room >= (size_t)1 << 30) { /* a results file is kilobytes */
      snprintf(err, cap, "larger than 1 GiB: not a results file");
      free(buf);
      fclose(f);
      return NULL;
    }
    char *grown = realloc(buf, room * 2);
    if (!grown) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = grown;
    room *= 2;
  }
  bool rerr = ferror(f) != 0;
  fclose(f);
  if (!buf) {
    snprintf(err, cap, "out of memory");
    return NULL;
  }
  if (rerr) {
    snprintf(err, cap, "read error");
    free(buf);
    return NULL;
  }
  json_t *root = json_parse(buf, size, err, cap);
  free(buf);
  return root;
}

void json_free(json_t *v)
{
  /* Siblings iteratively, children recursively: depth is bounded by the
   * parser, length is not. */
  while (v) {
    json_t *next = v->next;
    json_free(v->child);
    free(v->string);
    free(v->key);
    free(v);
    v = next;
  }
}

const json_t *json_get(const json_t *obj, const char *key)
{
  if (!obj || obj->kind != JSON_OBJECT)
    return NULL;
  for (const json_t *m = obj->child; m; m = m->next)
    if (strcmp(m->key, key) == 0)
      return m;
  return NULL;
}

size_t json_count(const json_t *v)
{
  size_t n = 0;
  if (v && (v->kind == JSON_ARRAY || v->kind == JSON_OBJECT))
    for (const json_t *c = v->child; c; c = c->next)
      n++;
  return n;
}
