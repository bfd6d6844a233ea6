/*
 * A JSON validator for the test suites (well-formedness: RFC 8259's grammar,
 * strict numbers, no trailing commas, nothing after the value). Renderers
 * that emit JSON (metrics, health, tree) are checked with it.
 */
#ifndef BW_TESTS_JSON_CHECK_H
#define BW_TESTS_JSON_CHECK_H

#include <stdbool.h>
#include <string.h>


static inline const char *bwt_json_ws(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
    p++;
  return p;
}

static inline const char *bwt_json_value(const char *p, int depth);

static inline const char *bwt_json_string(const char *p) {
  if (*p++ != '"')
    return NULL;
  while (*p != '"') {
    if ((unsigned char)*p < 0x20)
      return NULL;
    if (*p == '\\') {
      p++;
      if (*p == 'u') {
        for (int i = 1; i <= 4; i++)
          if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f') ||
                (p[i] >= 'A' && p[i] <= 'F')))
            return NULL;
        p += 4;
      } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
        return NULL;
      }
    }
    p++;
  }
  return p + 1;
}

static inline const char *bwt_json_number(const char *p) {
  if (*p == '-')
    p++;
  if (*p == '0')
    p++;
  else if (*p >= '1' && *p <= '9')
    while (*p >= '0' && *p <= '9')
      p++;
  else
    return NULL;
  if (*p == '.') {
    p++;
    if (!(*p >= '0' && *p <= '9'))
      return NULL;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!(*p >= '0' && *p <= '9'))
      return NULL;
    while (*p >= '0' && *p <= '9')
      p++;
  }
  return p;
}

static inline const char *bwt_json_value(const char *p, int depth) {
  if (depth > 32)
    return NULL;
  p = bwt_json_ws(p);
  if (*p == '{' || *p == '[') {
    char close = *p == '{' ? '}' : ']';
    bool obj = *p == '{';
    p = bwt_json_ws(p + 1);
    if (*p == close)
      return p + 1;
    for (;;) {
      if (obj) {
        p = bwt_json_string(bwt_json_ws(p));
        if (p == NULL)
          return NULL;
        p = bwt_json_ws(p);
        if (*p++ != ':')
          return NULL;
      }
      p = bwt_json_value(p, depth + 1);
      if (p == NULL)
        return NULL;
      p = bwt_json_ws(p);
      if (*p == ',') {
        p++;
        continue;
      }
      return *p == close ? p + 1 : NULL;
    }
  }
  if (*p == '"')
    return bwt_json_string(p);
  if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
    return p + 4;
  if (strncmp(p, "false", 5) == 0)
    return p + 5;
  return bwt_json_number(p);
}

static inline bool bwt_json_valid(const char *text) {
  const char *p = bwt_json_value(text, 0);
  return p != NULL && *bwt_json_ws(p) == '\0';
}

#endif
