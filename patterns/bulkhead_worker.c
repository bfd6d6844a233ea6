/*
 * bulwark: the bulkhead's worker wrapper (patterns/BULKHEAD.md).
 *
 * Each worker runs a wrapper behaviour around the user's (opts.worker): the
 * wrapper turns the pool's W_JOB into a request that looks as if it came
 * from the requester (so the user's handler answers it with plain
 * bw_reply), runs W_FN jobs, tells the pool when a job is done, and passes
 * every other message (a borrower's, during a checkout) to the user's
 * handler unchanged.
 *
 * The pool actor that spawns the workers is in bulkhead_pool.c; the
 * protocol between them in bulkhead_internal.h.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/bulkhead.h"
#include "bulwark/error.h"
#include "bulwark/message.h"
#include "bulwark/runtime.h"
#include "patterns/bulkhead_internal.h"

typedef struct wstate {
  bw_pid_t pool;
  const bw_behaviour_t *user; /* NULL: a function-jobs-only worker */
  uint32_t slot;
  uint32_t _pad;
} wstate;

/* The user's state follows the wrapper's, 16-byte aligned as the runtime
 * promises every state. */
#define WHDR ((sizeof(wstate) + 15u) & ~(size_t)15u)

static inline void *user_state(wstate *w) { return (unsigned char *)w + WHDR; }

static int w_init(bw_ctx_t *ctx, void *state, void *arg) {
  wstate *w = state;
  const warg *a = arg;
  w->pool = a->pool;
  w->user = a->user;
  w->slot = a->slot;
  if (w->user != NULL && w->user->init != NULL)
    return w->user->init(ctx, user_state(w), a->user_arg);
  return 0;
}

static void w_done(bw_ctx_t *ctx, wstate *w) {
  done_note d = {w->slot, 0};
  /* fails only when the pool is gone (then so are we, soon): a dead letter
   * that subscribers see marked internal (the type ranges are in
   * bulwark/message.h) */
  (void)bw_send(bw_ctx_runtime(ctx), w->pool, W_DONE, &d, sizeof d);
}

static int w_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  wstate *w = state;
  if (msg->from == w->pool && (msg->type == W_JOB || msg->type == W_FN) &&
      msg->len >= sizeof(job_hdr)) {
    job_hdr h;
    memcpy(&h, msg->data, sizeof h);
    /* the request as the requester made it: bw_reply needs from, ref and
     * the request flag, and answers h.from directly */
    bw_msg_t req = {.type = h.type,
                    .len = msg->len - (uint32_t)sizeof h,
                    .from = h.from,
                    .ref = h.ref,
                    .data = msg->len > sizeof h ? (const unsigned char *)msg->data + sizeof h : NULL,
                    .status = 0,
                    .flags = h.reply ? BW_MSGF_REQUEST : 0};
    if (msg->type == W_JOB) {
      int rc = w->user->handle(ctx, user_state(w), &req);
      /* BW_STOP or a crash: the pool sees the exit instead */
      if (rc == BW_CONTINUE)
        w_done(ctx, w);
      return rc;
    }
    bw_bulkhead_job_t job;
    if (req.len != sizeof job)
      return BW_EINVAL; /* the pool checked it: a bug, so crash */
    memcpy(&job, req.data, sizeof job);
    int st = job.fn(ctx, w->user != NULL ? user_state(w) : NULL, job.arg);
    /* done first, then the answer: a requester that asks the pool for its
     * metrics after the answer finds the job counted (the pool's mailbox
     * has W_DONE before anything the requester sends next) */
    w_done(ctx, w);
    if (h.reply)
      (void)bw_reply(ctx, &req, st > 0 ? 0 : st, BW_BULKHEAD_RESULT, NULL, 0);
    return BW_CONTINUE;
  }
  if (w->user != NULL)
    return w->user->handle(ctx, user_state(w), msg);
  if (msg->flags & BW_MSGF_REQUEST)
    (void)bw_reply(ctx, msg, BW_EINVAL, 0, NULL, 0);
  return BW_CONTINUE;
}

static void w_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  wstate *w = state;
  if (w->user != NULL && w->user->terminate != NULL)
    w->user->terminate(ctx, user_state(w), reason);
}

/* Workers of pools without a worker behaviour. */
static const bw_behaviour_t fn_worker = {.name = "bulkhead.worker",
                                         .state_size = sizeof(wstate),
                                         .init = w_init,
                                         .handle = w_handle,
                                         .terminate = w_terminate,
                                         .never_muted = true};

/*
 * The wrapper's state size depends on the user's behaviour, and the
 * runtime keeps a pointer to the behaviour for the worker's whole life,
 * which can outlast the pool (a dedicated-thread worker still in a job when
 * the pool exits). So each user behaviour gets one wrapper behaviour for
 * the life of the process, kept in this list: as long-lived as the static
 * behaviours they wrap, and bounded by their number. The mutex is taken at
 * pool init only.
 */
typedef struct wrapper {
  struct wrapper *next;
  const bw_behaviour_t *user;
  bw_behaviour_t beh;
} wrapper;

static pthread_mutex_t wrappers_mx = PTHREAD_MUTEX_INITIALIZER;
static wrapper *wrappers;

const bw_behaviour_t *bw__bulkhead_wrapper_for(const bw_behaviour_t *user) {
  if (user == NULL)
    return &fn_worker;
  const bw_behaviour_t *b = NULL;
  pthread_mutex_lock(&wrappers_mx);
  for (wrapper *w = wrappers; w != NULL && b == NULL; w = w->next)
    if (w->user == user && w->beh.state_size == WHDR + user->state_size)
      b = &w->beh;
  if (b == NULL) {
    wrapper *w = calloc(1, sizeof *w);
    if (w != NULL) {
      w->user = user;
      w->beh = (bw_behaviour_t){.name = user->name != NULL ? user->name : "bulkhead.worker",
                                .state_size = WHDR + user->state_size,
                                .init = w_init,
                                .handle = w_handle,
                                .terminate = w_terminate,
                                .never_muted = true};
      w->next = wrappers;
      wrappers = w;
      b = &w->beh;
    }
  }
  pthread_mutex_unlock(&wrappers_mx);
  return b;
}

