/*
 * bulwark internal: the logger's state in a runtime, and what the library
 * itself logs through (the public side is include/bulwark/log.h).
 */
#ifndef BW_RUNTIME_LOG_H
#define BW_RUNTIME_LOG_H

#include <pthread.h>
#include <stdint.h>

#include "bulwark/log.h"
#include "bulwark/runtime.h"

/* A sink and its argument. Two of them, so that a new one is written
 * where no reader looks (log.c, "The sink"). */
typedef struct bw__log_sink {
  bw_log_sink_fn fn; /* NULL: stderr */
  void *arg;
} bw__log_sink;

typedef struct bw__log {
  uint32_t level;       /* atomic: bw_log_level_t, DEBUG..OFF */
  uint32_t format;      /* atomic: BW_LOG_TEXT or BW_LOG_JSON */
  uint32_t env_bad;     /* BW_LOG_LEVEL / BW_LOG_FORMAT set but not understood (bits) */
  uint32_t cur;         /* atomic: the sink in force, 0 or 1 */
  uint32_t inflight[2]; /* atomic: lines being given to sinks[i] now */
  bw__log_sink sinks[2]; /* written only by bw_log_set_sink, while unread */
  pthread_mutex_t set_mx; /* one bw_log_set_sink at a time */
} bw__log;

/* Who a line is about, when it is not the calling actor: the supervisor
 * names the child it reports on, the exit path the actor that crashed.
 * Any field may be NULL / BW_PID_NONE. */
typedef struct bw__log_who {
  bw_pid_t pid;
  const char *name;
  const char *path;
} bw__log_who;

struct bw_runtime;
/* Whether opts' log_level and log_format are in range. */
bool bw__log_opts_valid(const bw_runtime_opts_t *opts);
/* Level and format from opts, else the environment (read here, once),
 * else notice and text. An environment value it cannot read is reported
 * as a warning line once the runtime exists (bw__log_env_check). */
void bw__log_init(struct bw_runtime *rt, const bw_runtime_opts_t *opts);
void bw__log_env_check(struct bw_runtime *rt);
void bw__log_destroy(struct bw_runtime *rt);

/* bw_log_write about someone else than the calling actor. */
#if defined(__GNUC__)
__attribute__((format(printf, 6, 7)))
#endif
int bw__log_about(struct bw_runtime *rt, int level, const bw__log_who *who,
                  const bw_log_field_t *fields, size_t nfields, const char *fmt, ...);

/* A crash report's fields for a reason (kind, code name, bw_strerror's
 * text, the reason's own text) into f[0..4); returns how many it filled. */
size_t bw__log_reason_fields(const bw_reason_t *r, bw_log_field_t f[4]);

/* The exit path (release.c): an actor that crashed with nobody linked to
 * it, so no supervisor or partner reports it, is logged here (error). */
struct bw__actor;
void bw__log_lone_crash(struct bw__actor *a, const bw_reason_t *r);

#endif
