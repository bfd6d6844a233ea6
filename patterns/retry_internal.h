/*
 * bulwark internal: the one retry decision (patterns/backoff.c), for the
 * retry executor (retry.c), the policy's executor (policy_executor.c) and
 * the policy's in-caller form (policy_caller.c). Each had its own copy;
 * they disagreed on what a caller gets when the budget refuses a retry.
 *
 * Decided once: BW_EBUDGET. The last status would hide that the budget, not
 * the target, ended the request, and an outer retry layer would retry it
 * (BW_ETIMEDOUT, say), multiplying load in exactly the storm the budget is
 * there to stop; BW_EBUDGET is final for bw_retry_default_retryable. The
 * policy answered so; the retry executor answered the last status (its
 * header comment and test changed with this).
 */
#ifndef BW_PATTERNS_RETRY_INTERNAL_H
#define BW_PATTERNS_RETRY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "bulwark/retry.h"

/* After a failed attempt (or a refusal in front of one): what is known. */
typedef struct bw__retry_ask {
  int status;                      /* the failure */
  bool fixed_pid;                  /* the target is a pid, not a name: BW_ENOPROC is final */
  bw_retry_pred_fn pred;           /* NULL = bw_retry_default_retryable */
  void *pred_arg;
  uint32_t attempts, max_attempts; /* made so far (the first included), allowed */
  const bw_retry_backoff_t *backoff;
  bw_retry_backoff_state_t *bo;    /* the request's delays; advanced by a retry */
  bool bo_start;                   /* start bo with bo_seed first (a lazily started sequence) */
  uint64_t bo_seed;
  uint64_t now_ms, deadline_at_ms; /* deadline_at_ms 0 = none */
  bw_retry_budget_t *budget;       /* NULL = none */
} bw__retry_ask;

typedef enum bw__retry_verdict {
  BW__RETRY_AGAIN = 0, /* retry after *delay_ms (the budget's retry is taken) */
  BW__RETRY_FINAL,     /* not retryable, or no attempt left: ends with the status */
  BW__RETRY_DEADLINE,  /* no attempt could start before the deadline: BW_ETIMEDOUT */
  BW__RETRY_BUDGET,    /* the budget refused the retry: BW_EBUDGET */
} bw__retry_verdict;

/* Whether status may be retried at all: never BW_EINVAL, BW_ESHUTDOWN, or
 * BW_ENOPROC from a fixed pid (pids are never reused); else the predicate. */
bool bw__retry_retryable(int status, bool fixed_pid, bw_retry_pred_fn pred, void *arg);

/* The decision, in this order: retryable and attempts left (else FINAL);
 * the next delay, drawn from bo, ends before the deadline (else DEADLINE);
 * the budget allows a retry (else BUDGET); AGAIN. *end_status gets what the
 * caller ends the request with (a's status, BW_ETIMEDOUT or BW_EBUDGET;
 * unchanged for AGAIN), *delay_ms the wait for AGAIN. */
bw__retry_verdict bw__retry_decide(const bw__retry_ask *a, uint64_t *delay_ms, int *end_status);

#endif
