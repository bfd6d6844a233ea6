/*
 * bulwark: the registry of named breakers and pools (resilience.h).
 *
 * The table is append-only: an entry is written in full under the mutex,
 * then published by a release store of the count, so readers (lookups,
 * iteration, stats) load the count with acquire and read entries below it
 * without a lock. Entries are never removed while the registry lives, and
 * no field changes after publication (a revived breaker or pool is a new
 * actor on the same handle). Lookups are O(n) over a short table with a
 * hash compared first; a registry holds tens of entries, not thousands, and
 * a hash index would cost a second structure to publish safely.
 *
 * The keeper: an actor of the registry (unsupervised from
 * bw_resilience_start, or a child of a tree), trapping exits. On its
 * shutdown it tells every breaker and pool actor the registry made to stop,
 * monitors them, and exits when the last DOWN arrives: so a tree, or the
 * runtime's stop, stops the registry's actors in the keeper's place in the
 * order. Memory is freed by bw_resilience_destroy only, once no actor of
 * the registry runs (a handle may be freed only once its actor is gone).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bulwark/actor.h"
#include "bulwark/error.h"
#include "bulwark/resilience.h"
#include "bulwark/runtime.h"
#include "runtime/atomic.h"

#define RES_MAGIC 0x52534C4Eu /* "RSLN" */
#define RES_CAPACITY_MAX 65536u

typedef struct entry {
  uint32_t kind;
  uint32_t hash;
  char name[BW_RESILIENCE_NAME_MAX + 1];
  bw_breaker_t *br;
  bw_bulkhead_t *pool;
} entry_t;

struct bw_resilience {
  bw_runtime_t *rt;
  uint64_t keeper;   /* bw_pid_t of the running keeper; release in its init */
  bool started_here; /* bw_resilience_start spawned it: stop may stop it */
  uint32_t magic;
  uint32_t cap;
  uint32_t count;   /* published entries; release store under mu, acquire loads */
  uint32_t closing; /* under mu: no creation from a keeper's shutdown until the next keeper */
  pthread_mutex_t mu;
  entry_t *entries;
};

void bw_resilience_opts_init(bw_resilience_opts_t *o) {
  if (o != NULL)
    o->capacity = 256;
}

int bw_resilience_opts_validate(const bw_resilience_opts_t *o) {
  if (o == NULL || o->capacity == 0 || o->capacity > RES_CAPACITY_MAX)
    return BW_EINVAL;
  return 0;
}

static uint32_t hash_name(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s != '\0'; s++)
    h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

static bool name_ok(const char *name) {
  return name != NULL && name[0] != '\0' && strlen(name) <= BW_RESILIENCE_NAME_MAX;
}

/* Lock-free lookup among the published entries. */
static entry_t *find(const bw_resilience_t *reg, const char *name, uint32_t h) {
  /* acquire: pairs with the release store in publish(): the entry's fields
   * are visible before its index is */
  uint32_t n = bw__ld32_acq(&reg->count);
  for (uint32_t i = 0; i < n; i++) {
    entry_t *e = &reg->entries[i];
    if (e->hash == h && strcmp(e->name, name) == 0)
      return e;
  }
  return NULL;
}

static void publish(bw_resilience_t *reg) {
  /* release: the entry written above becomes visible with its index */
  bw__st32_rel(&reg->count, reg->count + 1);
}

/* --- The keeper ------------------------------------------------------------------ */

typedef struct keeper {
  bw_resilience_t *reg;
  bw_pid_t self;
  uint32_t pending; /* DOWNs still to come */
  bool closing;
} keeper_t;

static void set_closing(bw_resilience_t *reg, uint32_t on) {
  pthread_mutex_lock(&reg->mu);
  reg->closing = on;
  pthread_mutex_unlock(&reg->mu);
}

static int keeper_init(bw_ctx_t *ctx, void *state, void *arg) {
  keeper_t *k = state;
  bw_resilience_t *reg = arg;
  if (reg == NULL || reg->magic != RES_MAGIC || reg->rt != bw_ctx_runtime(ctx))
    return BW_EINVAL;
  bw_pid_t old = bw_resilience_pid(reg);
  if (old != BW_PID_NONE && old != bw_self(ctx) && bw_is_alive(reg->rt, old))
    return BW_EALREADY; /* one keeper per registry */
  bw_trap_exit(ctx, true);
  k->reg = reg;
  k->self = bw_self(ctx);
  set_closing(reg, 0); /* a new keeper: the registry serves again */
  /* release: the keeper is set up before callers find it through reg */
  bw__st64_rel(&reg->keeper, k->self);
  return 0;
}

/* Stops every actor the registry made; true if there is nothing to wait for. */
static bool close_all(bw_ctx_t *ctx, keeper_t *k) {
  bw_resilience_t *reg = k->reg;
  pthread_mutex_lock(&reg->mu);
  reg->closing = 1;
  uint32_t n = reg->count;
  pthread_mutex_unlock(&reg->mu);
  for (uint32_t i = 0; i < n; i++) {
    entry_t *e = &reg->entries[i];
    bw_pid_t pid = e->br != NULL ? bw_breaker_pid(e->br) : bw_bulkhead_pid(e->pool);
    uint64_t ref;
    /* a pid that is already dead gives a DOWN (noproc) at once: counted */
    if (pid != BW_PID_NONE && bw_monitor(ctx, pid, &ref) == 0) {
      k->pending++;
      (void)bw_exit(reg->rt, pid, BW_REASON_SHUTDOWN, 0, "resilience registry stopping");
    }
  }
  return k->pending == 0;
}

static int keeper_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  keeper_t *k = state;
  if (msg->type == BW_MSG_EXIT && !k->closing) {
    k->closing = true;
    return close_all(ctx, k) ? BW_STOP : BW_CONTINUE;
  }
  if (msg->type == BW_MSG_DOWN && k->closing && k->pending > 0 && --k->pending == 0)
    return BW_STOP;
  return BW_CONTINUE;
}

/* Runs last, however the keeper ended: the registry stops naming it (a
 * successor that already published keeps its pid: the CAS fails). */
static void keeper_cleanup(void *state) {
  keeper_t *k = state;
  if (k->reg != NULL)
    (void)bw__cas64(&k->reg->keeper, k->self, BW_PID_NONE);
  k->reg = NULL;
}

static const bw_behaviour_t keeper_behaviour = {
    .name = "bw_resilience",
    .state_size = sizeof(keeper_t),
    .init = keeper_init,
    .handle = keeper_handle,
    .cleanup = keeper_cleanup,
    .never_muted = true, /* a pattern actor: see RUNTIME.md, "Back-pressure" */
};

/* --- Lifecycle ----------------------------------------------------------------------- */

int bw_resilience_new(bw_runtime_t *rt, const bw_resilience_opts_t *opts,
                      bw_resilience_t **out) {
  bw_resilience_opts_t o;
  bw_resilience_opts_init(&o);
  if (opts != NULL)
    o = *opts;
  if (rt == NULL || out == NULL || bw_resilience_opts_validate(&o) != 0)
    return BW_EINVAL;
  bw_resilience_t *reg = calloc(1, sizeof *reg);
  entry_t *entries = calloc(o.capacity, sizeof *entries);
  if (reg == NULL || entries == NULL) {
    free(reg);
    free(entries);
    return BW_ENOMEM;
  }
  reg->rt = rt;
  reg->keeper = BW_PID_NONE;
  reg->cap = o.capacity;
  reg->entries = entries;
  pthread_mutex_init(&reg->mu, NULL);
  reg->magic = RES_MAGIC;
  *out = reg;
  return 0;
}

int bw_resilience_child_spec(bw_resilience_t *reg, const char *id, bw_child_spec_t *out) {
  if (reg == NULL || reg->magic != RES_MAGIC || id == NULL || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  out->id = id;
  out->behaviour = &keeper_behaviour;
  out->arg = reg;
  out->restart = BW_PERMANENT;
  out->type = BW_WORKER;
  return 0;
}

bw_pid_t bw_resilience_pid(const bw_resilience_t *reg) {
  /* acquire: pairs with the keeper's release store in its init */
  return reg == NULL ? BW_PID_NONE : bw__ld64_acq(&reg->keeper);
}

int bw_resilience_start(bw_resilience_t *reg, bw_pid_t *out) {
  if (reg == NULL || reg->magic != RES_MAGIC)
    return BW_EINVAL;
  bw_pid_t pid = bw_resilience_pid(reg);
  if (pid != BW_PID_NONE && bw_is_alive(reg->rt, pid))
    return BW_EALREADY;
  bw_spawn_opts_t so;
  bw_spawn_opts_init(&so);
  so.trap_exit = true;
  so.ordered_shutdown = true; /* stopped in phase 1: it has time to wait for its actors */
  int rc = bw_spawn(reg->rt, &keeper_behaviour, reg, &so, &pid);
  if (rc != 0)
    return rc;
  reg->started_here = true;
  if (out != NULL)
    *out = pid;
  return 0;
}

int bw_resilience_stop(bw_resilience_t *reg) {
  if (reg == NULL || reg->magic != RES_MAGIC)
    return BW_EINVAL;
  bw_pid_t pid = bw_resilience_pid(reg);
  if (pid == BW_PID_NONE || !bw_is_alive(reg->rt, pid))
    return 0;
  if (!reg->started_here)
    return BW_ERUNNING;
  /* refuse on a scheduler thread before the keeper is told anything */
  if (!bw_may_block(reg->rt))
    return BW_EWOULDBLOCK;
  (void)bw_exit(reg->rt, pid, BW_REASON_SHUTDOWN, 0, "resilience registry stopped");
  int rc = bw_wait_exit(reg->rt, pid, 0, NULL);
  if (rc == BW_EWOULDBLOCK)
    return rc;
  reg->started_here = false;
  return 0;
}

/* Whether an actor of the registry (the keeper, a breaker, a pool) runs. */
static bool any_alive(const bw_resilience_t *reg) {
  if (bw_is_alive(reg->rt, bw_resilience_pid(reg)))
    return true;
  uint32_t n = bw__ld32_acq(&reg->count); /* acquire: see find() */
  for (uint32_t i = 0; i < n; i++) {
    const entry_t *e = &reg->entries[i];
    bw_pid_t pid = e->br != NULL ? bw_breaker_pid(e->br) : bw_bulkhead_pid(e->pool);
    if (bw_is_alive(reg->rt, pid))
      return true;
  }
  return false;
}

/* Destroys the handles from the last one down; stops at the first refusal
 * (a breaker or pool a supervisor runs elsewhere), keeping it and those
 * before it for the next call. */
static int destroy_entries(bw_resilience_t *reg) {
  while (reg->count > 0) {
    entry_t *e = &reg->entries[reg->count - 1];
    int rc = e->br != NULL ? bw_breaker_destroy(e->br) : bw_bulkhead_destroy(e->pool);
    if (rc != 0)
      return rc;
    /* relaxed: nothing may read the registry while it is destroyed */
    bw__st32_rlx(&reg->count, reg->count - 1);
  }
  return 0;
}

int bw_resilience_destroy(bw_resilience_t *reg) {
  if (reg == NULL)
    return 0;
  if (reg->magic != RES_MAGIC)
    return BW_EINVAL;
  /* refuse on a scheduler thread before anything is stopped */
  if (!bw_may_block(reg->rt) && any_alive(reg))
    return BW_EWOULDBLOCK;
  int rc = bw_resilience_stop(reg);
  if (rc == 0)
    rc = destroy_entries(reg); /* stops what still runs without a keeper */
  if (rc != 0)
    return rc;
  reg->magic = 0;
  pthread_mutex_destroy(&reg->mu);
  free(reg->entries);
  free(reg);
  return 0;
}

/* --- Get or create --------------------------------------------------------------------- */

int bw_resilience_breaker(bw_resilience_t *reg, const char *name, const bw_breaker_opts_t *opts,
                          bw_breaker_t **out) {
  if (reg == NULL || reg->magic != RES_MAGIC || out == NULL || !name_ok(name))
    return BW_EINVAL;
  uint32_t h = hash_name(name);
  entry_t *e = find(reg, name, h);
  if (e != NULL && e->kind != BW_RESILIENCE_BREAKER)
    return BW_EINVAL;
  if (e != NULL && bw_is_alive(reg->rt, bw_breaker_pid(e->br))) {
    *out = e->br; /* the fast path: one scan, one load */
    return 0;
  }
  int rc = 0;
  pthread_mutex_lock(&reg->mu);
  if (reg->closing) {
    rc = BW_ESHUTDOWN;
  } else if ((e = find(reg, name, h)) != NULL) {
    if (e->kind != BW_RESILIENCE_BREAKER)
      rc = BW_EINVAL;
    else if ((rc = bw_breaker_start(e->br, NULL)) == BW_EALREADY) /* revive a dead actor */
      rc = 0;
  } else if (reg->count == reg->cap) {
    rc = BW_ELIMIT;
  } else {
    e = &reg->entries[reg->count];
    bw_breaker_opts_t bo;
    if (opts != NULL)
      bo = *opts;
    else
      bw_breaker_opts_init(&bo);
    snprintf(e->name, sizeof e->name, "%s", name);
    bo.name = e->name;
    rc = bw_breaker_new(reg->rt, &bo, &e->br);
    if (rc == 0 && (rc = bw_breaker_start(e->br, NULL)) != 0) {
      (void)bw_breaker_destroy(e->br); /* its actor never ran: frees only */
      e->br = NULL;
    }
    if (rc == 0) {
      e->kind = BW_RESILIENCE_BREAKER;
      e->hash = h;
      publish(reg);
    } else {
      memset(e, 0, sizeof *e);
    }
  }
  if (rc == 0)
    *out = e->br;
  pthread_mutex_unlock(&reg->mu);
  return rc;
}

/* A new pool entry (under the mutex, room checked): its handle made and its
 * actor started, then published. */
static int pool_create(bw_resilience_t *reg, const char *name, uint32_t h,
                       const bw_bulkhead_opts_t *opts, entry_t **out) {
  entry_t *e = &reg->entries[reg->count];
  bw_bulkhead_opts_t o = *opts;
  snprintf(e->name, sizeof e->name, "%s", name);
  o.name = e->name;
  int rc = bw_bulkhead_new(reg->rt, &o, &e->pool);
  if (rc == 0 && (rc = bw_bulkhead_start(e->pool, NULL)) != 0)
    (void)bw_bulkhead_destroy(e->pool); /* its actor never ran: frees only */
  if (rc != 0) {
    memset(e, 0, sizeof *e);
    return rc;
  }
  e->kind = BW_RESILIENCE_POOL;
  e->hash = h;
  publish(reg);
  *out = e;
  return 0;
}

int bw_resilience_pool(bw_resilience_t *reg, const char *name, const bw_bulkhead_opts_t *opts,
                       bw_bulkhead_t **out) {
  if (reg == NULL || reg->magic != RES_MAGIC || out == NULL || !name_ok(name))
    return BW_EINVAL;
  uint32_t h = hash_name(name);
  entry_t *e = find(reg, name, h);
  if (e != NULL && e->kind != BW_RESILIENCE_POOL)
    return BW_EINVAL;
  if (e != NULL && bw_is_alive(reg->rt, bw_bulkhead_pid(e->pool))) {
    *out = e->pool; /* the fast path: one scan, one load */
    return 0;
  }
  int rc = 0;
  pthread_mutex_lock(&reg->mu);
  if (reg->closing) {
    rc = BW_ESHUTDOWN;
  } else if ((e = find(reg, name, h)) != NULL) {
    if (e->kind != BW_RESILIENCE_POOL)
      rc = BW_EINVAL;
    else if ((rc = bw_bulkhead_start(e->pool, NULL)) == BW_EALREADY) /* revive a dead pool */
      rc = 0;
  } else if (opts == NULL) {
    rc = BW_EINVAL;
  } else if (reg->count == reg->cap) {
    rc = BW_ELIMIT;
  } else {
    rc = pool_create(reg, name, h, opts, &e);
  }
  if (rc == 0)
    *out = e->pool;
  pthread_mutex_unlock(&reg->mu);
  return rc;
}

int bw_resilience_find_breaker(const bw_resilience_t *reg, const char *name, bw_breaker_t **out) {
  if (reg == NULL || reg->magic != RES_MAGIC || out == NULL || !name_ok(name))
    return BW_EINVAL;
  const entry_t *e = find(reg, name, hash_name(name));
  if (e == NULL || e->kind != BW_RESILIENCE_BREAKER)
    return BW_ENOTFOUND;
  *out = e->br;
  return 0;
}

int bw_resilience_find_pool(const bw_resilience_t *reg, const char *name, bw_bulkhead_t **out) {
  if (reg == NULL || reg->magic != RES_MAGIC || out == NULL || !name_ok(name))
    return BW_EINVAL;
  const entry_t *e = find(reg, name, hash_name(name));
  if (e == NULL || e->kind != BW_RESILIENCE_POOL)
    return BW_ENOTFOUND;
  *out = e->pool;
  return 0;
}

/* --- Whole-registry operations ------------------------------------------------------------- */

int bw_resilience_foreach(const bw_resilience_t *reg,
                          int (*fn)(const bw_resilience_entry_t *e, void *arg), void *arg) {
  if (reg == NULL || reg->magic != RES_MAGIC || fn == NULL)
    return BW_EINVAL;
  uint32_t n = bw__ld32_acq(&reg->count); /* acquire: see find() */
  int calls = 0;
  for (uint32_t i = 0; i < n; i++) {
    const entry_t *e = &reg->entries[i];
    bw_resilience_entry_t v = {.kind = (int)e->kind, .name = e->name, .breaker = e->br,
                               .pool = e->pool};
    calls++;
    if (fn(&v, arg) != 0)
      break;
  }
  return calls;
}

int bw_resilience_reset_breakers(bw_resilience_t *reg) {
  if (reg == NULL || reg->magic != RES_MAGIC)
    return BW_EINVAL;
  uint32_t n = bw__ld32_acq(&reg->count);
  int told = 0;
  for (uint32_t i = 0; i < n; i++)
    if (reg->entries[i].kind == BW_RESILIENCE_BREAKER && bw_breaker_reset(reg->entries[i].br) == 0)
      told++;
  return told;
}

int bw_resilience_stats(const bw_resilience_t *reg, bw_resilience_stats_t *out) {
  if (reg == NULL || reg->magic != RES_MAGIC || out == NULL)
    return BW_EINVAL;
  memset(out, 0, sizeof *out);
  uint32_t n = bw__ld32_acq(&reg->count);
  for (uint32_t i = 0; i < n; i++) {
    const entry_t *e = &reg->entries[i];
    if (e->kind == BW_RESILIENCE_BREAKER) {
      out->breakers++;
      int st = bw_breaker_state(e->br);
      if (st >= 0 && st < 6)
        out->by_state[st]++;
      continue;
    }
    out->pools++;
    if (!bw_is_alive(reg->rt, bw_bulkhead_pid(e->pool))) {
      out->pools_down++;
      continue;
    }
    bw_bulkhead_stats_t m;
    if (bw_bulkhead_stats(e->pool, &m) != 0) {
      out->pools_unknown++;
      continue;
    }
    if (m.available == 0 && m.queued >= m.queue_capacity)
      out->pools_saturated++;
  }
  return 0;
}
