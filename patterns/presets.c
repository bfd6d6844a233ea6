/*
 * bulwark: policy presets. Each is a starting point the user adjusts; the
 * table and the reasons behind each number are in patterns/POLICY.md.
 * Presets set no target and no fallback (both are the caller's).
 */
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/policy.h"

static const char *const preset_names[BW_POLICY_PRESET__COUNT] = {
    [BW_POLICY_PRESET_API] = "api",
    [BW_POLICY_PRESET_DATABASE] = "database",
    [BW_POLICY_PRESET_AI] = "ai",
    [BW_POLICY_PRESET_EXTERNAL] = "external",
    [BW_POLICY_PRESET_CRITICAL] = "critical",
};

const char *bw_policy_preset_name(int kind) {
  return kind >= 0 && kind < BW_POLICY_PRESET__COUNT ? preset_names[kind] : NULL;
}

/* The fields every preset sets; the rest keep bw_policy_opts_init's values. */
typedef struct preset {
  uint32_t failures;      /* breaker: consecutive failures that trip it */
  uint64_t open_ms;       /* breaker: open wait before half-open */
  uint32_t attempts;      /* retry: attempts, first included */
  int backoff;            /* retry: backoff kind */
  uint64_t initial_ms, max_ms;
  double multiplier;
  double budget_ratio;    /* retry budget: retries per call */
  uint64_t timeout_ms;    /* per attempt */
  uint64_t deadline_ms;   /* overall; 0 = none */
  uint32_t concurrent, queued;
  uint64_t queue_ms;
  uint64_t rate;          /* per second; 0 = no rate limit */
  uint32_t burst;
  uint64_t rate_wait_ms;
} preset_t;

static const preset_t presets[BW_POLICY_PRESET__COUNT] = {
    /* api: an internal HTTP/RPC service. The example values. */
    [BW_POLICY_PRESET_API] = {.failures = 5, .open_ms = 60000, .attempts = 3,
                              .backoff = BW_RETRY_BACKOFF_EXPONENTIAL, .initial_ms = 100,
                              .max_ms = 2000, .multiplier = 2.0, .budget_ratio = 0.2,
                              .timeout_ms = 30000, .concurrent = 50, .queued = 100,
                              .queue_ms = 1000},
    /* database: few connections, short queries; a slow database must not
     * collect a crowd, so a small bulkhead and few, quick retries. */
    [BW_POLICY_PRESET_DATABASE] = {.failures = 3, .open_ms = 30000, .attempts = 2,
                                   .backoff = BW_RETRY_BACKOFF_EQUAL_JITTER, .initial_ms = 50,
                                   .max_ms = 500, .multiplier = 2.0, .budget_ratio = 0.1,
                                   .timeout_ms = 5000, .concurrent = 10, .queued = 50,
                                   .queue_ms = 2000},
    /* ai: slow, costly, quota-limited model calls: long timeouts, a rate
     * limit that waits for a token rather than failing, few retries spread
     * wide (decorrelated), a long open wait. */
    [BW_POLICY_PRESET_AI] = {.failures = 3, .open_ms = 120000, .attempts = 2,
                             .backoff = BW_RETRY_BACKOFF_DECORRELATED, .initial_ms = 1000,
                             .max_ms = 30000, .multiplier = 3.0, .budget_ratio = 0.1,
                             .timeout_ms = 120000, .deadline_ms = 300000, .concurrent = 5,
                             .queued = 20, .queue_ms = 30000, .rate = 1, .burst = 10,
                             .rate_wait_ms = 10000},
    /* external: a third-party API we do not control: full jitter so our
     * clients do not retry in step, a rate limit that refuses at once. */
    [BW_POLICY_PRESET_EXTERNAL] = {.failures = 5, .open_ms = 30000, .attempts = 3,
                                   .backoff = BW_RETRY_BACKOFF_FULL_JITTER, .initial_ms = 200,
                                   .max_ms = 5000, .multiplier = 2.0, .budget_ratio = 0.2,
                                   .timeout_ms = 10000, .deadline_ms = 30000, .concurrent = 20,
                                   .queued = 50, .queue_ms = 5000, .rate = 100, .burst = 20},
    /* critical: must answer fast: a tight overall deadline, more retries
     * but quick ones, a breaker slower to trip and quicker to probe. */
    [BW_POLICY_PRESET_CRITICAL] = {.failures = 10, .open_ms = 15000, .attempts = 5,
                                   .backoff = BW_RETRY_BACKOFF_DECORRELATED, .initial_ms = 20,
                                   .max_ms = 1000, .multiplier = 3.0, .budget_ratio = 0.3,
                                   .timeout_ms = 2000, .deadline_ms = 5000, .concurrent = 100,
                                   .queued = 200, .queue_ms = 500},
};

int bw_policy_preset_kind(int kind, bw_policy_opts_t *o) {
  if (o == NULL || kind < 0 || kind >= BW_POLICY_PRESET__COUNT)
    return BW_EINVAL;
  const preset_t *p = &presets[kind];
  bw_policy_opts_init(o);
  o->name = preset_names[kind];
  o->breaker = true;
  o->breaker_opts.name = preset_names[kind];
  o->breaker_opts.failure_threshold = p->failures;
  o->breaker_opts.open_ms = p->open_ms;
  o->max_attempts = p->attempts;
  o->backoff.kind = p->backoff;
  o->backoff.initial_ms = p->initial_ms;
  o->backoff.max_ms = p->max_ms;
  o->backoff.multiplier = p->multiplier;
  o->budget = true;
  o->budget_opts.ratio = p->budget_ratio;
  o->attempt_timeout_ms = p->timeout_ms;
  o->deadline_ms = p->deadline_ms;
  o->max_concurrent = p->concurrent;
  o->max_queued = p->queued;
  o->queue_timeout_ms = p->queue_ms;
  if (p->rate != 0) {
    o->rate_limit = true;
    o->rate = p->rate;
    o->rate_period_ms = 1000;
    o->rate_burst = p->burst;
    o->rate_wait_ms = p->rate_wait_ms;
  }
  return 0;
}

int bw_policy_preset(const char *name, bw_policy_opts_t *o) {
  if (name == NULL || o == NULL)
    return BW_EINVAL;
  for (int k = 0; k < BW_POLICY_PRESET__COUNT; k++)
    if (strcmp(name, preset_names[k]) == 0)
      return bw_policy_preset_kind(k, o);
  return BW_EINVAL;
}
