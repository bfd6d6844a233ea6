/*
 * bulwark: the registry of named breakers and bulkhead pools.
 *
 *   bw_resilience_t *reg;
 *   bw_resilience_create(rt, NULL, &reg);           // from main, before use
 *   bw_breaker_t *br;
 *   bw_resilience_breaker(reg, "payments", NULL, &br); // get or create
 *   bw_bulkhead_t *pool;
 *   bw_resilience_pool(reg, "db", &pool_opts, &pool);
 *
 * Get-or-create by name from any thread or actor: a name seen before
 * returns the same breaker (or pool) whatever the options; a lookup is
 * lock-free (an append-only table published with release stores); only
 * creation takes the registry's mutex. A pool whose actor has died (its
 * restart intensity ran out) is started again, with its options, by the
 * next get; so is a breaker's actor.
 *
 * Lifetime: the registry runs a keeper actor (trapping exits, with ordered
 * shutdown). When the runtime stops, or at bw_resilience_destroy, the keeper
 * stops every pool and breaker actor the registry created, waits for them
 * to be gone, and frees every breaker handle and the registry itself: after
 * bw_runtime_stop returns, nothing of it is left and the handles it gave
 * out are invalid. (If the keeper is killed with an untrappable kill, what
 * it owns is leaked: it cannot wait for anything then.)
 */
#ifndef BULWARK_RESILIENCE_H
#define BULWARK_RESILIENCE_H

#include "bulwark/breaker.h"
#include "bulwark/bulkhead.h"
#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bw_resilience bw_resilience_t;

#define BW_RESILIENCE_NAME_MAX 31u

typedef struct bw_resilience_opts {
  /* Breakers and pools, together, at most: 1 .. 65536 (default 256); the
   * table is allocated at create. Beyond it, creation fails with BW_ELIMIT. */
  uint32_t capacity;
} bw_resilience_opts_t;

void bw_resilience_opts_init(bw_resilience_opts_t *o);

/*
 * Creates a registry and its keeper. Call it from a thread that is not
 * running an actor (main, usually): the keeper is then stopped first at
 * bw_runtime_stop and has the grace period to stop what it owns.
 * Returns 0, BW_EINVAL (NULL rt or out, bad opts), BW_ENOMEM, bw_spawn's codes.
 */
int bw_resilience_create(bw_runtime_t *rt, const bw_resilience_opts_t *opts,
                         bw_resilience_t **out);

/*
 * Stops what the registry created and frees it (see the file comment); from
 * a thread that is not a scheduler thread, before bw_runtime_stop (after it
 * the registry is already gone: do not call). NULL is a no-op.
 * Returns 0, BW_EWOULDBLOCK.
 */
int bw_resilience_destroy(bw_resilience_t *reg);

/* The keeper's pid. */
bw_pid_t bw_resilience_pid(const bw_resilience_t *reg);

/*
 * Get or create the breaker named name (1 .. BW_RESILIENCE_NAME_MAX bytes):
 * created with opts (NULL = breaker.h's defaults; opts->name is replaced by
 * name) and its actor started. Returns 0 with *out; BW_EINVAL (NULL, bad
 * name or opts, the name is a pool's); BW_ELIMIT (table full);
 * BW_ESHUTDOWN (the registry is stopping); bw_breaker_new's and
 * bw_breaker_start's codes.
 */
int bw_resilience_breaker(bw_resilience_t *reg, const char *name, const bw_breaker_opts_t *opts,
                          bw_breaker_t **out);

/*
 * Get or create the pool named name: created with opts (required on
 * creation; its name is replaced by name) and its actor started. Returns 0
 * with *out = the pool's handle (bw_bulkhead_pid gives its pid now);
 * BW_EINVAL (NULL out or name, bad or missing opts, the name is a
 * breaker's); BW_ELIMIT; BW_ESHUTDOWN; bw_bulkhead_new's and
 * bw_bulkhead_start's codes.
 */
int bw_resilience_pool(bw_resilience_t *reg, const char *name, const bw_bulkhead_opts_t *opts,
                       bw_bulkhead_t **out);

/* Lookups only (lock-free). Return 0, BW_EINVAL, BW_ENOTFOUND. */
int bw_resilience_find_breaker(const bw_resilience_t *reg, const char *name, bw_breaker_t **out);
int bw_resilience_find_pool(const bw_resilience_t *reg, const char *name, bw_bulkhead_t **out);

/* Resets every breaker (bw_breaker_reset: closed, empty window); returns
 * how many were told, or BW_EINVAL. */
int bw_resilience_reset_breakers(bw_resilience_t *reg);

typedef enum bw_resilience_kind {
  BW_RESILIENCE_BREAKER = 1,
  BW_RESILIENCE_POOL = 2,
} bw_resilience_kind_t;

/* One entry, for iteration. */
typedef struct bw_resilience_entry {
  int kind;             /* bw_resilience_kind_t */
  const char *name;
  bw_breaker_t *breaker; /* BW_RESILIENCE_BREAKER */
  bw_bulkhead_t *pool;   /* BW_RESILIENCE_POOL */
} bw_resilience_entry_t;

/* Calls fn for each entry in creation order (lock-free; entries created
 * meanwhile may or may not be seen) until fn returns non-zero. Returns the
 * number of calls, or BW_EINVAL. */
int bw_resilience_foreach(const bw_resilience_t *reg,
                          int (*fn)(const bw_resilience_entry_t *e, void *arg), void *arg);

typedef struct bw_resilience_health {
  uint32_t breakers;
  uint32_t by_state[6];   /* breakers per bw_breaker_state_t */
  uint32_t pools;
  uint32_t pools_saturated;   /* no worker available and the queue full (or none) */
  uint32_t pools_down;        /* the pool actor is not running */
  uint32_t pools_unknown;     /* stats not read (bw_call failed) */
} bw_resilience_health_t;

/*
 * A health summary. Breaker states are one load each; pools are asked for
 * their stats (one bw_call each), so this is for a thread that is not a
 * scheduler thread; from an actor, pools count as unknown.
 * Returns 0, BW_EINVAL.
 */
int bw_resilience_health(bw_resilience_t *reg, bw_resilience_health_t *out);

#ifdef __cplusplus
}
#endif
#endif
