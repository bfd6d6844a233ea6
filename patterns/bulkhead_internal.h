/*
 * bulwark: the bulkhead's shared internals (patterns/bulkhead*.c; design in
 * patterns/BULKHEAD.md): the protocol between the pool actor and its
 * workers.
 *
 *   bulkhead.c         the API: options, the handle's lifecycle, the calls
 *   bulkhead_pool.c    the pool actor (bw_bulkhead_behaviour)
 *   bulkhead_worker.c  the worker wrapper around the user's behaviour
 */
#ifndef BULWARK_PATTERNS_BULKHEAD_INTERNAL_H
#define BULWARK_PATTERNS_BULKHEAD_INTERNAL_H

#include <stdint.h>

#include "bulwark/actor.h"
#include "bulwark/bulkhead.h"
#include "bulwark/message.h"

/* The handle (bw_bulkhead_t): what outlives the pool actor. */
struct bw_bulkhead {
  bw_runtime_t *rt;
  bw_bulkhead_opts_t opts;             /* opts.name points at name */
  char name[BW_BULKHEAD_NAME_MAX + 1];
  uint64_t pid;      /* bw_pid_t of the running pool; atomic (release by its init) */
  bool started_here; /* bw_bulkhead_start spawned it: stop may stop it */
};

/* Internal message types (bulkhead.h reserves BASE + 0x80 and up). */
enum {
  W_JOB = BW_MSG_BULKHEAD_BASE + 0x80, /* pool -> worker: job_hdr + the user's payload */
  W_FN,                                /* pool -> worker: job_hdr + bw_bulkhead_job_t */
  W_DONE,                              /* worker -> pool: done_note */
  P_EXPIRE,                            /* pool -> pool (timer): check the queue's head */
  P_RETIRE,                            /* pool -> pool (timer): retire_note */
};

/* Who to answer, and what the job was; in front of a job's payload. */
typedef struct job_hdr {
  bw_pid_t from;  /* the requester */
  uint64_t ref;   /* its request's ref */
  uint32_t type;  /* the user's message type (W_JOB) */
  uint32_t reply; /* 1: the requester waits for an answer */
} job_hdr;

_Static_assert(sizeof(job_hdr) == BW_MSG_INLINE_MAX - BW_BULKHEAD_PAYLOAD_MAX,
               "BW_BULKHEAD_PAYLOAD_MAX leaves room for the job header");
_Static_assert(sizeof(bw_bulkhead_stats_t) <= BW_MSG_INLINE_MAX,
               "stats fit an inline reply");

typedef struct done_note {
  uint32_t slot;
  uint32_t epoch;
} done_note;

typedef done_note retire_note;

/* What the pool gives a worker it spawns (bw_spawn's arg). */
typedef struct warg {
  bw_pid_t pool;
  const bw_behaviour_t *user;
  void *user_arg;
  uint32_t slot;
} warg;

/* The wrapper behaviour of workers running user (NULL: function jobs
 * only), one per user behaviour for the life of the process; NULL when out
 * of memory (bulkhead_worker.c). */
const bw_behaviour_t *bw__bulkhead_wrapper_for(const bw_behaviour_t *user);

#endif
