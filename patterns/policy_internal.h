/*
 * bulwark: the policy's shared internals (patterns/policy*.c; the order of
 * stages and the two forms in patterns/POLICY.md):
 *
 *   policy.c           the handle: options, lifecycle, counters, and the
 *                      decisions both forms share
 *   policy_executor.c  the executor actor (bw_policy_behaviour)
 *   policy_caller.c    the in-caller form (bw_policy_enter / bw_policy_exit)
 */
#ifndef BULWARK_PATTERNS_POLICY_INTERNAL_H
#define BULWARK_PATTERNS_POLICY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "bulwark/policy.h"
#include "bulwark/registry.h"
#include "patterns/retry_internal.h"
#include "runtime/atomic.h"

#define POLICY_MAGIC 0x504F4C59u /* "POLY" */

/* Counters of bw_policy_t.ctr: relaxed adds (bw__faa64_rlx; the counters
 * publish nothing else). Several
 * executors may share a policy. The in-caller form's hot path counts one
 * add at enter and one at exit: C_IC_CALLS stands for a call and its first
 * attempt (which every new in-caller request makes: its deadline cannot
 * have passed yet), C_IC_SUCC for a success and its end (the executor
 * counts C_DONE when it answers, which may be later than C_SUCC/C_FAIL);
 * bw_policy_stats adds them in. */
enum {
  C_CALLS, C_REFUSED, C_SUCC, C_FAIL, C_BREAKER, C_RL, C_BH, C_TIMEOUT, C_DEADLINE, C_BUDGET,
  C_TARGET, C_FB, C_FB_ERR, C_ATTEMPTS, C_RETRIES, C_QUEUED, C_RL_WAITS, C_ABANDONED, C_DONE,
  C_IC_CALLS, C_IC_SUCC,
  C__COUNT
};

struct bw_policy {
  bw_policy_opts_t o; /* name and target_name point into the buffers below */
  char name[BW_POLICY_NAME_MAX + 1];
  char target_name[BW_NAME_MAX + 1];
  bw_runtime_t *rt;
  bw_retry_budget_t own_budget;
  bw_retry_budget_t *budget;
  bw_ratelimit_t own_rl;
  bw_ratelimit_t *rl;
  bw_breaker_t *own_br;
  bw_breaker_t *br;
  bw_breaker_classify_fn user_classify;
  void *user_classify_arg;
  bool br_timed; /* the breaker detects slow calls: exit needs a duration */
  uint64_t incarnations;
  uint32_t magic;
  uint64_t pid;     /* bw_pid_t of the latest executor; release in its init */
  uint32_t live;    /* executors whose init ran and whose cleanup has not */
  bw_pid_t started; /* the one bw_policy_start spawned (BW_PID_NONE: none) */
  /* on a line of their own: every executor adds to them */
  _Alignas(64) uint64_t ctr[C__COUNT];
  /* the in-caller form's concurrency limit (attempts between enter and
   * exit); its own line: every in-caller attempt CASes it twice */
  _Alignas(64) uint32_t active;
};

static inline void bw__policy_count(bw_policy_t *p, int c) {
  /* relaxed: see the enum */
  (void)bw__faa64_rlx(&p->ctr[c], 1);
}

/* The counter of each cause of a failed request (policy.c; both forms). */
extern const int bw__policy_cause_ctr[BW_POLICY_CAUSE__COUNT];

/* The retry decision's question for a failed attempt of p (both forms; the
 * decision is patterns/retry_internal.h's, shared with retry.c). A pid
 * target that is gone stays gone; a named one may be restarted. now_ms is
 * left 0 for the caller to fill. */
void bw__policy_retry_ask(const bw_policy_t *p, int status, uint32_t attempts,
                          bw_retry_backoff_state_t *bo, uint64_t deadline_at_ms,
                          bw__retry_ask *a);

#endif
