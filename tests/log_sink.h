/*
 * A log sink for the suites (bulwark/log.h): it copies what each record
 * carries (the first BWT_LOG_KEEP of them; it counts all), under a mutex,
 * since records come from any thread. The main thread reads the copies
 * with bwt_log_find / bwt_log_field after waiting for them (BWT_POLL on
 * bwt_log_count), and asserts there.
 */
#ifndef BW_TESTS_LOG_SINK_H
#define BW_TESTS_LOG_SINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "bulwark/bulwark.h"

#define BWT_LOG_KEEP 64

typedef struct bwt_log_rec {
  int level;
  unsigned long long time_ns;
  bw_pid_t pid;
  char actor[64];
  char path[256];
  char msg[BW_LOG_MSG_MAX];
  char line[BW_LOG_LINE_MAX + 1];
  size_t len;
  size_t nfields;
  char keys[BW_LOG_FIELDS_MAX][32];
  char vals[BW_LOG_FIELDS_MAX][256]; /* numbers as decimal text */
  bool is_num[BW_LOG_FIELDS_MAX];
} bwt_log_rec;

typedef struct bwt_log {
  pthread_mutex_t mx;
  unsigned count; /* records seen */
  bwt_log_rec recs[BWT_LOG_KEEP];
} bwt_log;

static bwt_log bwt_log_g = {.mx = PTHREAD_MUTEX_INITIALIZER};

static inline void bwt_log_reset(void) {
  pthread_mutex_lock(&bwt_log_g.mx);
  bwt_log_g.count = 0;
  memset(bwt_log_g.recs, 0, sizeof bwt_log_g.recs);
  pthread_mutex_unlock(&bwt_log_g.mx);
}

static inline void bwt_log_sink(const bw_log_record_t *r, void *arg) {
  (void)arg;
  pthread_mutex_lock(&bwt_log_g.mx);
  unsigned i = bwt_log_g.count++;
  if (i < BWT_LOG_KEEP) {
    bwt_log_rec *c = &bwt_log_g.recs[i];
    c->level = r->level;
    c->time_ns = r->time_ns;
    c->pid = r->pid;
    snprintf(c->actor, sizeof c->actor, "%s", r->actor);
    snprintf(c->path, sizeof c->path, "%s", r->path);
    snprintf(c->msg, sizeof c->msg, "%s", r->msg);
    memcpy(c->line, r->line, r->len < sizeof c->line - 1 ? r->len : sizeof c->line - 1);
    c->len = r->len;
    c->nfields = r->nfields;
    for (size_t k = 0; k < r->nfields && k < BW_LOG_FIELDS_MAX; k++) {
      snprintf(c->keys[k], sizeof c->keys[k], "%s", r->fields[k].key);
      c->is_num[k] = r->fields[k].str == NULL;
      if (c->is_num[k])
        snprintf(c->vals[k], sizeof c->vals[k], "%lld", r->fields[k].num);
      else
        snprintf(c->vals[k], sizeof c->vals[k], "%s", r->fields[k].str);
    }
  }
  pthread_mutex_unlock(&bwt_log_g.mx);
}

static inline unsigned bwt_log_count(void) {
  pthread_mutex_lock(&bwt_log_g.mx);
  unsigned n = bwt_log_g.count;
  pthread_mutex_unlock(&bwt_log_g.mx);
  return n;
}

/* The first kept record whose message is msg (and, if pid is not
 * BW_PID_NONE, about pid), or NULL. Read after the records stopped coming
 * or under no concurrent writer to that record (a kept record is written
 * once). */
static inline const bwt_log_rec *bwt_log_find(const char *msg, bw_pid_t pid) {
  pthread_mutex_lock(&bwt_log_g.mx);
  const bwt_log_rec *found = NULL;
  for (unsigned i = 0; i < bwt_log_g.count && i < BWT_LOG_KEEP && found == NULL; i++)
    if (strcmp(bwt_log_g.recs[i].msg, msg) == 0 &&
        (pid == BW_PID_NONE || bwt_log_g.recs[i].pid == pid))
      found = &bwt_log_g.recs[i];
  pthread_mutex_unlock(&bwt_log_g.mx);
  return found;
}

static inline bool bwt_log_has(const char *msg) { return bwt_log_find(msg, BW_PID_NONE) != NULL; }

/* A field's value as text, or NULL. */
static inline const char *bwt_log_field(const bwt_log_rec *r, const char *key) {
  for (size_t k = 0; k < r->nfields && k < BW_LOG_FIELDS_MAX; k++)
    if (strcmp(r->keys[k], key) == 0)
      return r->vals[k];
  return NULL;
}

/* Whether any kept line holds needle. */
static inline bool bwt_log_any_line_has(const char *needle) {
  pthread_mutex_lock(&bwt_log_g.mx);
  bool hit = false;
  for (unsigned i = 0; i < bwt_log_g.count && i < BWT_LOG_KEEP && !hit; i++)
    hit = strstr(bwt_log_g.recs[i].line, needle) != NULL ||
          strstr(bwt_log_g.recs[i].msg, needle) != NULL;
  pthread_mutex_unlock(&bwt_log_g.mx);
  return hit;
}

/* Whether s starts with a timestamp ("2026-11-23T10:15:02.123Z", 24 bytes). */
static inline bool bwt_log_is_time(const char *s) {
  static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
  for (size_t i = 0; i < sizeof pat - 1; i++) {
    bool digit = s[i] >= '0' && s[i] <= '9';
    if (pat[i] == 'd' ? !digit : s[i] != pat[i])
      return false;
  }
  return true;
}

/* A text line without its timestamp and the space after it, after
 * checking that it has them, or NULL. */
static inline const char *bwt_log_after_time(const char *line) {
  return bwt_log_is_time(line) && line[24] == ' ' ? line + 25 : NULL;
}

#endif
