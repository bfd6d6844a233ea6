/*
 * A small JSON reader for bw-bench's own --json files (--baseline,
 * --check-json): the whole text is parsed into a tree of json_t nodes.
 *
 * It reads standard JSON (RFC 8259): objects, arrays, strings with every
 * escape (\uXXXX and surrogate pairs become UTF-8), numbers, true, false,
 * null; nesting at most JSON_MAX_DEPTH deep. It is strict: trailing commas,
 * comments, leading zeros, NaN and a second top-level value are errors,
 * because a file that is not what the runner writes should be rejected, not
 * guessed at. Objects keep their members in file order; a lookup is a
 * linear scan (O(members)), fine for a few dozen keys. No external library:
 * the check must need nothing outside the project.
 */
#ifndef BW_BENCH_JSON_H
#define BW_BENCH_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 64

typedef enum json_kind {
  JSON_NULL,
  JSON_BOOL,
  JSON_NUMBER,
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT,
} json_kind_t;

typedef struct json json_t;

struct json {
  json_kind_t kind;
  bool boolean;
  double number;
  char *string;  /* JSON_STRING: NUL-terminated UTF-8 (a \u0000 ends it) */
  char *key;     /* the member's name, when the parent is an object */
  json_t *child; /* JSON_ARRAY, JSON_OBJECT: first element or member */
  json_t *next;  /* the next sibling */
};

/*
 * Parses text (len bytes, need not be NUL-terminated). Returns the root,
 * or NULL with a message ("line L, column C: ...") in err (cap bytes).
 */
json_t *json_parse(const char *text, size_t len, char *err, size_t cap);

/* Reads and parses a whole file. Returns the root, or NULL with err set. */
json_t *json_parse_file(const char *path, char *err, size_t cap);

void json_free(json_t *v);

/* The member key of object obj, or NULL (also if obj is not an object). */
const json_t *json_get(const json_t *obj, const char *key);

/* Elements of an array (members of an object); 0 for other kinds. */
size_t json_count(const json_t *v);

#endif
