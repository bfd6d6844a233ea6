/*
 * bulwark: application error codes (bw_error_register), which bw_strerror
 * and bw_err_name fall back on for a code not of bulwark's own list.
 *
 * A process-wide table of BW_ERR_USER_CAP entries, appended to under a
 * mutex and read without one: an entry is written completely before the
 * count that covers it is published, and is never changed or removed
 * afterwards, so a reader that loads the count sees whole entries only, and
 * the strings it hands out stay valid for the life of the process. The
 * strings live in the table itself (no allocation: nothing to free at exit,
 * and a registration cannot fail for want of memory).
 *
 * Lookup is a scan, O(registered codes), and runs only for codes outside
 * bulwark's list, which are rare (an error path that prints one). Rejected:
 * a hash map, whose resizing would need the readers to take a lock or an
 * epoch scheme, for a table of tens of entries.
 */
#include <pthread.h>
#include <string.h>

#include "runtime/internal.h"

typedef struct user_err {
  int code;
  char name[BW_ERR_NAME_MAX + 1];
  char text[BW_ERR_TEXT_MAX + 1];
} user_err;

static user_err table[BW_ERR_USER_CAP];
static uint32_t count; /* atomic: entries [0, count) are complete */
static pthread_mutex_t write_mx = PTHREAD_MUTEX_INITIALIZER;

static const user_err *find(int code) {
  /* acquire: pairs with the writer's release of the count, so the entries
   * below it are seen whole */
  uint32_t n = bw__ld32_acq(&count);
  for (uint32_t i = 0; i < n; i++)
    if (table[i].code == code)
      return &table[i];
  return NULL;
}

static bool valid_string(const char *s, size_t max) {
  return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

int bw_error_register(int code, const char *name, const char *text) {
  if (code > BW_ERR_USER_FIRST || !valid_string(name, BW_ERR_NAME_MAX) ||
      !valid_string(text, BW_ERR_TEXT_MAX))
    return BW_EINVAL;
  pthread_mutex_lock(&write_mx);
  int rc = 0;
  const user_err *e = find(code);
  uint32_t n = bw__ld32_rlx(&count); /* relaxed: only writers change it, under the mutex */
  if (e != NULL)
    rc = (strcmp(e->name, name) == 0 && strcmp(e->text, text) == 0) ? 0 : BW_EEXIST;
  else if (n == BW_ERR_USER_CAP)
    rc = BW_ELIMIT;
  else {
    user_err *w = &table[n];
    w->code = code;
    memcpy(w->name, name, strlen(name) + 1);
    memcpy(w->text, text, strlen(text) + 1);
    /* release: the entry is complete before a reader's count covers it */
    bw__st32_rel(&count, n + 1);
  }
  pthread_mutex_unlock(&write_mx);
  return rc;
}

const char *bw__error_user_text(int code) {
  const user_err *e = code <= BW_ERR_USER_FIRST ? find(code) : NULL;
  return e != NULL ? e->text : NULL;
}

const char *bw__error_user_name(int code) {
  const user_err *e = code <= BW_ERR_USER_FIRST ? find(code) : NULL;
  return e != NULL ? e->name : NULL;
}
