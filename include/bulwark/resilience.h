/*
 * bulwark: the registry of named breakers and bulkhead pools.
 *
 *   bw_resilience_t *reg;
 *   bw_resilience_new(rt, NULL, &reg);              // a handle, no keeper yet
 *   bw_resilience_start(reg, NULL);                 // or bw_resilience_child_spec
 *   bw_breaker_t *br;
 *   bw_resilience_breaker(reg, "payments", NULL, &br); // get or create
 *   bw_bulkhead_t *pool;
 *   bw_resilience_pool(reg, "db", &pool_opts, &pool);
 *   ...
 *   bw_resilience_destroy(reg);                     // stops it all, frees it all
 *
 * Get-or-create by name from any thread or actor: a name seen before
 * returns the same breaker (or pool) whatever the options; a lookup is
 * lock-free (an append-only table published with release stores); only
 * creation takes the registry's mutex. A pool whose actor has died (its
 * restart intensity ran out) is started again, with its options, on the
 * same handle by the next get; so is a breaker's actor.
 *
 * The keeper: the registry's actor (trapping exits), unsupervised
 * (bw_resilience_start, stopped first at bw_runtime_stop) or a child of a
 * tree (bw_resilience_child_spec: give it a place after what its breakers'
 * and pools' users need, e.g. after the metrics reporter, as in DESIGN.md's
 * resilience tree). When it is shut down it stops every breaker and pool
 * actor the registry created and waits for them to be gone; from then on
 * creation and revival answer BW_ESHUTDOWN until a keeper runs again. A
 * registry used before any keeper ran creates and revives freely; its
 * actors then stop with the runtime or at destroy. Memory: the registry,
 * its breakers and its pools are freed by bw_resilience_destroy only
 * (after bw_runtime_stop too); the handles it gave out are invalid after it.
 * (If the keeper is killed with an untrappable kill, it cannot stop what it
 * owns: destroy still does.)
 */
#ifndef BULWARK_RESILIENCE_H
#define BULWARK_RESILIENCE_H

#include "bulwark/breaker.h"
#include "bulwark/bulkhead.h"
#include "bulwark/supervisor.h"
#include "bulwark/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bw_resilience bw_resilience_t;

#define BW_RESILIENCE_NAME_MAX 31u

typedef struct bw_resilience_opts {
  /* Breakers and pools, together, at most: 1 .. 65536 (default 256); the
   * table is allocated at new. Beyond it, creation fails with BW_ELIMIT. */
  uint32_t capacity;
} bw_resilience_opts_t;

void bw_resilience_opts_init(bw_resilience_opts_t *o);
/* Returns 0 or BW_EINVAL (NULL, capacity out of bounds). */
int bw_resilience_opts_validate(const bw_resilience_opts_t *o);

/* --- Lifecycle --------------------------------------------------------------- */

/* A registry, no keeper yet. Returns 0, BW_EINVAL (NULL rt or out, bad
 * opts; NULL opts = defaults), BW_ENOMEM. */
int bw_resilience_new(bw_runtime_t *rt, const bw_resilience_opts_t *opts,
                      bw_resilience_t **out);

/* A child spec running the keeper (id by reference; restart permanent,
 * worker). The registry must outlive the tree. Returns 0, BW_EINVAL. */
int bw_resilience_child_spec(bw_resilience_t *reg, const char *id, bw_child_spec_t *out);

/*
 * Unsupervised: start spawns the keeper (*out, optional: its pid); stop
 * shuts it down and waits until it and every actor it stops are gone.
 * start returns 0, BW_EINVAL, BW_EALREADY (a keeper runs, started or
 * supervised), bw_spawn's codes. stop returns 0 (also when no keeper
 * runs), BW_EINVAL, BW_ERUNNING (a supervisor runs the keeper: stop it
 * there), BW_EWOULDBLOCK (on a scheduler thread: nothing is stopped).
 */
int bw_resilience_start(bw_resilience_t *reg, bw_pid_t *out);
int bw_resilience_stop(bw_resilience_t *reg);

/*
 * bw_resilience_stop, then destroys every breaker and pool the registry
 * made (stopping those still running, as their own destroy does) and frees
 * the registry. From a thread that is not a scheduler thread, before or
 * after bw_runtime_stop. NULL is a no-op. Returns 0; BW_EWOULDBLOCK (on a
 * scheduler thread while an actor of the registry runs: nothing stopped);
 * BW_ERUNNING (the keeper, or a breaker or pool, runs under a supervisor:
 * the registry stays valid, with what was not destroyed yet).
 */
int bw_resilience_destroy(bw_resilience_t *reg);

/* The keeper's pid, or BW_PID_NONE while none runs. */
bw_pid_t bw_resilience_pid(const bw_resilience_t *reg);

/*
 * Get or create the breaker named name (1 .. BW_RESILIENCE_NAME_MAX bytes):
 * created with opts (NULL = breaker.h's defaults; opts->name is replaced by
 * name) and its actor started. Returns 0 with *out; BW_EINVAL (NULL, bad
 * name or opts, the name is a pool's); BW_ELIMIT (table full);
 * BW_ESHUTDOWN (the keeper is stopping or stopped); bw_breaker_new's and
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

typedef struct bw_resilience_stats {
  uint32_t breakers;
  uint32_t by_state[6];   /* breakers per bw_breaker_state_t */
  uint32_t pools;
  uint32_t pools_saturated;   /* no worker available and the queue full (or none) */
  uint32_t pools_down;        /* the pool actor is not running */
  uint32_t pools_unknown;     /* stats not read (bw_call failed) */
} bw_resilience_stats_t;

/*
 * What the registry holds now: breakers by state, pools by condition.
 * Breaker states are one load each; pools are asked for their stats (one
 * bw_call each), so this is for a thread that is not a scheduler thread;
 * from an actor, pools count as unknown. Returns 0, BW_EINVAL.
 */
int bw_resilience_stats(const bw_resilience_t *reg, bw_resilience_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
