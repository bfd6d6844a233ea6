/*
 * bulwark internal: the runtime's shared structures and bw__ functions.
 * Nothing here is public API; see include/bulwark/ for that.
 */
#ifndef BW_RUNTIME_INTERNAL_H
#define BW_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark/bulwark.h"
#include "runtime/atomic.h"
#include "runtime/log.h"
#include "runtime/reftab.h"
#include "runtime/subs.h"

#define BW__CACHELINE 64

/* ------------------------------------------------------------------------ */
/* Pids: 64 bits, from the top (layout and arithmetic in runtime/RUNTIME.md, */
/* "Pids"):                                                                  */
/*   63..56 node (8): bw_runtime_opts.node_id, 0 for a plain runtime        */
/*   55..48 runtime tag (8): 1..255, from a process-wide counter; differs    */
/*          between the live runtimes of a process (pid.c)                   */
/*   47..22 generation (26): 1..2^26-1; 0 never names a live actor          */
/*   21..0  slot (22): up to 4,194,304 live actors                          */
/* The top 16 bits (node, tag) name the runtime: a pid whose top bits are   */
/* not this runtime's is never one of its actors.                           */
#define BW__PID_SLOT_BITS 22
#define BW__PID_GEN_BITS 26
#define BW__SLOT_MAX (1u << BW__PID_SLOT_BITS)
#define BW__GEN_MASK ((1u << BW__PID_GEN_BITS) - 1u)
#define BW__PID_SLOT(p) ((uint32_t)(p) & (BW__SLOT_MAX - 1u))
#define BW__PID_GEN(p) ((uint32_t)((p) >> BW__PID_SLOT_BITS) & BW__GEN_MASK)
#define BW__PID_TAG(p) ((uint32_t)((p) >> 48) & 0xFFu)
#define BW__PID_NODE(p) ((uint32_t)((p) >> 56))
#define BW__PID_RUNTIME(p) ((uint32_t)((p) >> 48)) /* node << 8 | tag */
#define BW__PID_MAKE(rtbits, slot, gen)                                          \
  (((uint64_t)(rtbits) << 48) | ((uint64_t)(gen) << BW__PID_SLOT_BITS) | (uint64_t)(slot))

/* ------------------------------------------------------------------------ */
/* Messages                                                                   */

typedef struct bw__qnode {
  struct bw__qnode *next; /* atomic: written by producers, read by the consumer */
} bw__qnode;

/* Internal message kinds; only USER reaches handlers unchanged. */
enum {
  BW__K_USER = 0,    /* user message (also timer messages, replies, dead-letter notes) */
  BW__K_EXIT,        /* exit signal: reason in payload */
  BW__K_DOWN,        /* monitor notification: ref, reason in payload */
  BW__K_LINK,        /* link request from pub.from */
  BW__K_UNLINK,      /* unlink from pub.from */
  BW__K_MONITOR,     /* pub.from monitors us with pub.ref */
  BW__K_DEMONITOR,   /* pub.from drops monitor pub.ref */
  BW__K_WAKE,        /* nothing: wakes the actor to look at force/urgent */
  BW__K_RTIMEOUT,    /* receive-timeout check (internal timer) */
  BW__K_REQTIMEOUT,  /* request deadline (internal timer), pub.ref = request */
  BW__K_IO,          /* readiness: a watch's own node, pub.ref = watch (runtime/io.c) */
  BW__K_IOTIMER,     /* a watch's deadline (bw_io_deadline), pub.ref = watch */
};

/* Internal message flags (beyond the public BW_MSGF_*). */
enum {
  BW__MF_NO_NOTIFY = 1u << 8, /* a dead-letter notification: never re-notified */
  BW__MF_TIMER = 1u << 9,     /* sent by a timer */
};

/*
 * A message node: 56 bytes of header, so a payload of up to 8 bytes (a
 * number, a pointer, a pid) makes a node of one cache line, and 72 bytes
 * two. Crossing cores costs per line, so this is the send path's main cost.
 * To save room, `to` shares the word of the mailbox link: it is read before
 * the push (which overwrites it); after a pop the owner sets it again where
 * it is still needed (dead letters). A moved payload has no inline bytes,
 * so its destructor lives in the inline area (bw__msg_dtor).
 */
typedef struct bw__msg {
  union {
    bw__qnode q;        /* mailbox link (must be first) ... */
    bw_pid_t to;        /* ... or, before the push, the receiver */
  };
  uint16_t kind;
  uint8_t cls;          /* pool size class of this node */
  uint8_t _pad[5];
  bw_msg_t pub;         /* what the handler sees; pub.data points into inl or is the moved ptr */
  _Alignas(8) unsigned char inl[]; /* inline payload, or a moved payload's destructor */
} bw__msg;

#define BW__MSG_HDR (sizeof(bw__msg))

typedef void (*bw__dtor_fn)(void *);
static inline bw__dtor_fn bw__msg_dtor(const bw__msg *m) {
  bw__dtor_fn f;
  __builtin_memcpy(&f, m->inl, sizeof(f));
  return f;
}
static inline void bw__msg_set_dtor(bw__msg *m, bw__dtor_fn f) {
  __builtin_memcpy(m->inl, &f, sizeof(f));
}

/* ------------------------------------------------------------------------ */
/* Memory pool: per-thread caches of fixed-size blocks carved from 64 KiB    */
/* chunks; a block freed by another thread goes back to its owner's remote   */
/* list (push-only + take-all, so no ABA).                                   */

#define BW__POOL_NCLASS 10
#define BW__CHUNK_SIZE (64u * 1024u)

typedef struct bw__cache bw__cache;

typedef struct bw__chunk {
  bw__cache *owner;
  uint32_t cls;
  uint32_t _pad;
  struct bw__chunk *all_next; /* runtime's list of every chunk (freed at destroy) */
  uint64_t _pad2[5];          /* header = one cache line */
} bw__chunk;

struct bw__cache {
  struct bw_runtime *rt;
  struct {
    void *free;           /* local free list, owner only */
    char *bump, *end;     /* carving area of the current chunk */
  } cls[BW__POOL_NCLASS];
  /* remote free lists: other threads push, the owner takes all; own lines */
  struct {
    void *head;
    char pad[BW__CACHELINE - sizeof(void *)];
  } remote[BW__POOL_NCLASS];
  struct bw__cache *all_next; /* runtime's list of caches */
  struct bw__cache *spare_next;
};

void bw__cache_init(bw__cache *c, struct bw_runtime *rt);
int bw__pool_class(size_t size); /* -1 if too large for the pool */
size_t bw__pool_class_size(int cls);
void *bw__pool_alloc(bw__cache *c, int cls);
void bw__pool_free(bw__cache *c, void *p);
bw__cache *bw__cache_acquire(struct bw_runtime *rt); /* for a new runtime-owned thread */
void bw__cache_release(struct bw_runtime *rt, bw__cache *c);
void bw__pool_destroy(struct bw_runtime *rt);
/* Test only (compiled in always, not public API): after n more pool
 * allocations (messages, actors) of rt succeed, every later one fails, as
 * when memory runs out; n < 0 turns the hook off. Costs one load of a
 * read-only word per allocation while off. */
void bw__test_alloc_fail_after(struct bw_runtime *rt, int64_t n);

/* ------------------------------------------------------------------------ */
/* Actors                                                                     */

/* Intrusive multi-producer single-consumer queue (runtime/mailbox.h), in
 * two parts so that an actor can keep them on different cache lines: the
 * producers' end and the consumer's end. */
typedef struct bw__mpsc {
  /* producers exchange here; low bit set = empty and its owner not scheduled */
  uintptr_t head;
} bw__mpsc;
typedef struct bw__mpsc_c {
  bw__qnode *tail; /* consumer only: the next node to hand out, or the stub */
  bw__qnode stub;
} bw__mpsc_c;

enum { BW__FORCE_KILL = 1, BW__FORCE_SHUTDOWN = 2 };
/* Back-pressure thresholds, in batches of backlog: an actor becomes
 * overloaded (its senders get muted) with at least HIGH batches queued after
 * a full turn, and stops being overloaded at LOW or fewer, early enough that
 * the unmuted senders are running again before it runs dry. */
#define BW__OVERLOAD_HIGH 32u
/* Sends under a kept pin add to the receiver's push count in batches of
 * this many (send.c): far below the overload mark. */
#define BW__PUSHED_BATCH 64u
#define BW__OVERLOAD_LOW 8u
/* Bits of an actor's trap word. */
enum {
  BW__SIG_TRAP = 1u << 0,       /* trapping exits */
  BW__SIG_OVERLOADED = 1u << 1, /* behind on its mailbox: senders get muted */
};
enum {
  BW__AF_INITED = 1u << 1,   /* init succeeded: terminate runs at exit */
  BW__AF_HAS_RT = 1u << 2,   /* receive timeout active */
  BW__AF_REPLIED = 1u << 3,  /* the current request was answered */
  BW__AF_HOLD = 1u << 4,     /* awaiting (bw_await) or replaying held messages: then.c */
};
enum {
  BW__CF_DEDICATED = 1u << 0, /* runs on its own thread, woken by a semaphore */
  BW__CF_WAITER = 1u << 1,    /* a bw_call waiter: no behaviour */
  BW__CF_DROP = 1u << 2,      /* bounded mailbox drops instead of rejecting */
  BW__CF_NAMED = 1u << 3,     /* registered at spawn (registry cleans up at exit) */
  BW__CF_ROOT = 1u << 4,      /* spawned from outside with ordered_shutdown: stopped first */
  BW__CF_WATCHED = 1u << 5,   /* has a hang limit: handler calls are timed */
  BW__CF_NEVER_MUTED = 1u << 6, /* never muted by back-pressure (supervisors, patterns) */
};

/* Monitors and requests are kept in ref maps (runtime/reftab.h). */

/* Per-actor state that idle actors rarely need; allocated on first use. */
typedef struct bw__actor_ext {
  bw_pid_t *links;
  uint32_t nlinks, caplinks;
  bw__reftab mon_out; /* monitors this actor holds on others (not requests') */
  bw__reftab mon_in;  /* others monitoring this actor */
  uint32_t hang_ms;     /* watchdog limit */
  bw_pid_t hang_to;     /* who hears of a hang */
  /* outstanding bw_request's; each monitors its target with its own ref */
  bw__reftab reqs;
  /* receive timeout */
  uint64_t rt_ms;
  uint64_t rt_last_ns;
  bw_timer_t rt_timer;
  /* dedicated thread / waiter wake-up: posted when the mailbox goes from
   * marked-empty to non-empty (at most once per idle period) */
  sem_t wake;
  pthread_t thread;
  /* dedicated spawn handshake */
  sem_t init_done;
  int init_rc;
  void *init_arg;
  bw_reason_t init_reason;
  /* I/O watches this actor owns (runtime/io.c), removed at its exit */
  struct bw__watch *io_watches;
  /* atomic: the actor it was last muted on (the owner writes; whoever
   * signals it an exit reads, bw__wake_muted). Here, not in the header:
   * the header's two lines are full, and muting is off the per-message
   * path (the ext is made the first time the actor is muted). */
  bw_pid_t muted_on;
  /* lineage (bw_parent, bw_child_id), set before init for an actor
   * spawned with link (spawn.c), never changed; read by the actor only */
  bw_pid_t parent;
  const char *child_id;
  /* continuations and the await (then.c), made by the first bw_then */
  struct bw__thens *thens;
  /* deferred requests (defer.c): request ref -> requester */
  bw__reftab tokens;
} bw__actor_ext;

typedef struct bw__actor {
  /* First cache line: what senders touch. Producers exchange mb.head on
   * every send and read the rest; the owner writes here only on rare
   * changes (trap/overload bits), so a stream of sends does not bounce the
   * line the consumer works on, and the consumer's per-message writes
   * (mailbox tail, cur_msg, state) do not bounce this one. */
  bw__mpsc mb;           /* the mailbox's producer end; consumer end: mbc */
  bw_pid_t pid;
  struct bw_runtime *rt;
  bw__msg *urgent;       /* atomic */
  bw__qnode *muted;      /* atomic: senders muted on this actor (a stack through their rq) */
  uint32_t mb_cap;       /* 0 = unbounded */
  uint32_t mb_count;     /* atomic; maintained only when bounded */
  uint32_t mb_pushed;    /* atomic: mailbox nodes pushed, ever (wraps); backlog = pushed - popped */
  /* Urgent exits, taken before the next message however deep the mailbox
   * (Erlang handles exit signals to a non-trapping process on arrival):
   * force = BW__FORCE_KILL or BW__FORCE_SHUTDOWN, set by senders;
   * urgent = an EXIT node with the full reason (first one wins). */
  uint32_t force;        /* atomic */
  uint32_t trap;         /* atomic: BW__SIG_*; written by the owner only, read by senders */
  uint8_t cflags;        /* BW__CF_*: fixed at spawn, read by senders */
  uint8_t cls;           /* pool class of this block; 0xFF = malloc'ed (fixed at spawn) */
  /* BW__AF_*: changed only by the actor's own thread, and rarely (init, a
   * receive timeout set or cleared): in the spare end of the senders' line.
   * Whether the current message was replied is per handler call, so it is
   * thread-local (bw__tl.replied), not a flag here. */
  uint16_t flags;
  /* Second line: the owner's (and the scheduler's run-queue link). */
  _Alignas(64) bw__mpsc_c mbc; /* the mailbox's consumer end */
  bw__qnode rq; /* run-queue link (injection queue, muted stack) */
  const bw_behaviour_t *beh;
  bw__actor_ext *ext;
  bw__msg *cur_msg;      /* the message being handled (bw_msg_take, crashes) */
  uint32_t mb_popped;    /* mailbox nodes its turns have taken, ever (owner only) */
  uint32_t self_queued;  /* of the backlog, messages it sent itself (owner only) */
  /* The exit wake-up (bw__exit_wake): a mailbox node that is part of the
   * actor, so a kill or shutdown never needs memory to take effect. Pushed
   * at most once in a life, by whoever first makes an exit pending; its
   * link holds BW__EXITQ_UNUSED until then. Fills the second line. */
  bw__qnode exit_q;
  _Alignas(16) unsigned char state[];
} bw__actor;

#define BW__EXITQ_UNUSED ((bw__qnode *)1)

/* ------------------------------------------------------------------------ */
/* Pid slots                                                                  */

/* Low half of a slot word: pin count, and this bit once the actor is
 * exiting (links and monitors being told): it is no longer alive, but sends
 * still land, to be dead-lettered by its exit path. */
#define BW__SLOT_EXITING 0x80000000u
#define BW__SLOT_PINS 0x7FFFFFFFu

typedef struct bw__slot {
  uint64_t word;      /* atomic: live generation << 32 | exiting bit | pin count */
  bw__actor *actor;   /* valid while the generation is live */
  uint32_t free_next; /* atomic: free-list link, index + 1 (0 = end) */
  uint32_t next_gen;  /* generation of the next incarnation */
} bw__slot;

#define BW__SLOT_PAGE_BITS 12
#define BW__SLOT_PAGE (1u << BW__SLOT_PAGE_BITS)
#define BW__SLOT_DIR (BW__SLOT_MAX >> BW__SLOT_PAGE_BITS) /* pages for every slot */
/* Freed slots wait in a batch until this many were freed (pid.c): one per
 * 2^SHIFT slots reused so far, at least MIN, at most BW__SLOT_QUARANTINE. */
#define BW__SLOT_QUARANTINE 65536u
#define BW__SLOT_QUARANTINE_MIN 64u
#define BW__SLOT_QUARANTINE_SHIFT 10

/* Pins the actor a pid names; NULL if dead/stale. Unpin with bw__pid_unpin. */
bw__actor *bw__pid_pin(struct bw_runtime *rt, bw_pid_t pid, bw__slot **slot);
static inline void bw__pid_unpin(bw__slot *s) {
  /* release: our push into the mailbox is complete before the reaper,
   * which waits for zero pins, may drain and free the actor */
  bw__faa64(&s->word, (uint64_t)-1);
}
int bw__pid_alloc(struct bw_runtime *rt, bw__actor *a); /* sets a->pid, not yet live */
void bw__pid_publish(struct bw_runtime *rt, bw__actor *a);
void bw__pid_mark_exiting(struct bw_runtime *rt, bw_pid_t pid);
void bw__pid_invalidate(struct bw_runtime *rt, bw_pid_t pid); /* waits for pins */
void bw__pin_drop(void);    /* the turn is over: release its kept pin, keep no more */
void bw__pin_release(void); /* release the kept pin (if any) */
void bw__pid_free(struct bw_runtime *rt, bw_pid_t pid);
void bw__pid_init(struct bw_runtime *rt); /* the runtime tag: after node_id is set */
void bw__pid_destroy(struct bw_runtime *rt);
/* Test hooks (tests/runtime/test_pid.c), while nothing spawns: the
 * quarantine's largest batch (0: reuse at once; 64 or less: that size
 * always), and the generation a free slot's next actor
 * gets (to drive a slot past a wrap point without 2^24 spawns). */
void bw__pid_test_quarantine(struct bw_runtime *rt, uint32_t batch);
void bw__pid_test_next_gen(struct bw_runtime *rt, uint32_t slot, uint32_t gen);
typedef void (*bw__pid_visit_fn)(struct bw_runtime *rt, bw_pid_t pid, void *ud);
void bw__pid_foreach_live(struct bw_runtime *rt, bw__pid_visit_fn fn, void *ud);

/* ------------------------------------------------------------------------ */
/* Threads                                                                    */

/* Per-thread counters, summed by bw_runtime_stats. */
typedef struct bw__counters {
  uint64_t sent;
  uint64_t handled;
} bw__counters;

enum { BW__TH_WORKER = 1, BW__TH_DEDICATED, BW__TH_TIMER, BW__TH_EXTERNAL };

typedef struct bw__thread {
  int kind;
  struct bw_runtime *rt;
  bw__cache *cache;
  bw__counters *ctr;
  struct bw__worker *worker; /* when kind == WORKER */
  /* watchdog: the watched handler running now (all atomic; busy_pid is
   * written last when it starts and cleared when it ends) */
  bw_pid_t busy_pid;
  uint64_t busy_since;
  uint64_t busy_limit_ms;
  bw_pid_t busy_report_to;
  uint64_t reported_since; /* scanner only */
  struct bw__thread *watch_next; /* dedicated threads' watch list */
} bw__thread;

/* What the current thread is doing for which runtime. */
typedef struct bw__tls {
  uint64_t rt_id;        /* runtime the fields below belong to */
  bw__thread *th;        /* NULL for a thread that is not the runtime's */
  bw__actor *cur;        /* actor whose callback runs now */
  jmp_buf *jb;           /* where bw_fail unwinds to */
  bw_reason_t crash;     /* filled by bw_fail before unwinding */
  bw__cache *ext_cache;  /* external thread's cache for rt_id */
  bw_pid_t mute_on;      /* the running actor sent to this overloaded actor */
  bool replied;          /* the running handler replied to its message */
  struct bw__gate *mute_gate; /* ... or through this closed gate (a node channel) */
  /* a pin kept for the rest of a worker's turn (bw__deliver): only while
   * pin_keep (set by bw__actor_run on a worker, cleared by bw__pin_drop) */
  bool pin_keep;
  uint32_t pin_pushed;   /* sends under the kept pin not yet added to its mb_pushed */
  uint32_t nsends;       /* deliveries by this thread (wraps): did a turn send? */
  bw_pid_t pin_pid;
  struct bw__slot *pin_slot;
  struct bw__actor *pin_actor;
  bw__counters *ext_ctr;
} bw__tls;

extern __thread bw__tls bw__tl;

typedef struct bw__worker {
  /* local run queue: a bounded ring; the owner pushes, anyone pops (steal) */
  uint32_t rq_head;                                  /* atomic: consumers CAS */
  char pad0[BW__CACHELINE - sizeof(uint32_t)];
  uint32_t rq_tail;                                  /* atomic: owner stores */
  char pad1[BW__CACHELINE - sizeof(uint32_t)];
  bw__actor **rq;                                    /* entries: atomic */
  bw__thread th;
  bw__counters ctr;
  unsigned index;
  uint32_t rng;
  uint32_t tick;
  pthread_t thread;
  pthread_cond_t park_cv;
  bool parked;  /* under rt->park_mx */
  bool wake;    /* under rt->park_mx */
  bool io_watch;   /* under rt->park_mx: parked with a deadline, watching for an I/O stall */
  bool io_recheck; /* under rt->park_mx: the leader left epoll_wait; look again */
  /* scheduler utilisation (bw_runtime_stats): monotonic ns spent parked,
   * and since when it is parked now (0: not parked); owner writes */
  uint64_t idle_ns;    /* atomic */
  uint64_t park_since; /* atomic */
  uint32_t handoff;    /* atomic: its turn is long, a lone queued actor may be stolen */
  /* adaptive spin (scheduler.c, next_actor): spins to skip before parking,
   * and the skip to use after the next wasted spin; owner only */
  uint32_t spin_skip, spin_backoff;
} bw__worker;

#define BW__RQ_SIZE 4096u

/* ------------------------------------------------------------------------ */
/* Timers                                                                     */

typedef struct bw__timer_ent {
  uint64_t due_ns;
  uint64_t period_ns;
  uint64_t seq;       /* creation order, ties */
  bw__msg *msg;       /* prepared message (owned) */
  uint32_t gen;
  uint32_t heap_idx;  /* UINT32_MAX when not armed */
  uint32_t free_next;
} bw__timer_ent;

typedef struct bw__timers {
  pthread_mutex_t mx;
  pthread_cond_t cv;
  bw__timer_ent *ents;
  uint32_t nents, capents;
  uint32_t free_head; /* index + 1 */
  uint32_t *heap;
  uint32_t nheap, capheap;
  uint64_t seq;
  /* under mx: the deadline the timer thread sleeps until (UINT64_MAX:
   * indefinitely; 0: awake, it looks at the heap before sleeping again).
   * An arm wakes it only for an earlier timer: a stream of requests with
   * the same timeout, each armed then cancelled, costs no wake-ups. */
  uint64_t sleep_until;
  uint32_t max;     /* bw_runtime_opts.max_timers (set before init) */
  uint32_t reserve; /* deadlines' headroom above max: max / 4 */
  bool stop;
  pthread_t thread;
  bw__thread th;
  bw__counters ctr;
} bw__timers;

int bw__timers_init(struct bw_runtime *rt);
void bw__timers_stop(struct bw_runtime *rt);   /* joins the thread, dead-letters pending */
void bw__timers_destroy(struct bw_runtime *rt);
/* Arms a timer carrying msg (ownership passes on success). An internal
 * timer: never refused for the cap (bw__timer_arm_in with BW__TM_SYSTEM). */
int bw__timer_arm(struct bw_runtime *rt, uint64_t delay_ns, uint64_t period_ns,
                  bw__msg *msg, bw_timer_t *out);
/* Which limit a timer is armed under (runtime/timer.c, "The cap"): BW_ELIMIT
 * once that many are pending. */
enum {
  BW__TM_APP = 0,      /* the application's: up to max */
  BW__TM_DEADLINE = 1, /* request and wait deadlines: up to max + reserve */
  BW__TM_SYSTEM = 2,   /* the library's own: never refused for the cap */
};
int bw__timer_arm_in(struct bw_runtime *rt, uint64_t delay_ns, uint64_t period_ns,
                     bw__msg *msg, bw_timer_t *out, int cls);
int bw__timer_cancel(struct bw_runtime *rt, bw_timer_t id);
void bw__timers_fire_due(struct bw_runtime *rt);
void bw__timers_kick(struct bw_runtime *rt); /* re-evaluate (a watched actor appeared) */

/* ------------------------------------------------------------------------ */
/* The runtime                                                                */

enum { BW__RT_RUNNING = 0, BW__RT_STOPPING = 1, BW__RT_STOPPED = 2 };

typedef struct bw__registry_ent {
  char *name;
  bw_pid_t pid;
} bw__registry_ent;

struct bw_runtime {
  uint64_t id;
  uint32_t state; /* atomic: BW__RT_* */
  unsigned nworkers;
  unsigned batch;
  bool manual_clock;
  uint32_t alloc_hook;    /* atomic: test hook armed (bw__test_alloc_fail_after) */
  uint64_t manual_now_ns; /* atomic */
  uint64_t epoch_ns;

  /* pid slots (pid.c) */
  bw__slot *slot_pages[BW__SLOT_DIR]; /* atomic entries */
  uint64_t slot_free;                 /* atomic: reusable stack, aba tag << 32 | (index + 1) */
  uint64_t slot_young;                /* atomic: quarantined batch, count << 32 | (index + 1) */
  uint32_t slot_bump;                 /* atomic */
  uint32_t slot_quarantine;           /* atomic: largest batch (BW__SLOT_QUARANTINE) */
  uint64_t slot_reused;               /* atomic: slots in the batches taken so far */
  uint32_t pid_runtime;               /* a pid's top 16 bits here: node << 8 | tag */

  /* scheduler */
  bw__worker *workers;     /* room for max_workers */
  unsigned max_workers;    /* nworkers plus spares for hung workers */
  uint32_t nworkers_live;  /* atomic: started workers */
  pthread_mutex_t spare_mx;
  uint32_t nwatched;       /* atomic: live actors with a hang limit */
  bw__thread *watch_list;  /* dedicated threads running watched actors, under life_mx */
  bw__mpsc inject;         /* actors scheduled from non-worker threads */
  bw__mpsc_c inject_c;
  uint32_t inject_lock;    /* atomic: 1 while a worker consumes inject */
  uint32_t inject_len;     /* atomic: approximate length, to skip empty checks */
  uint32_t nparked;        /* atomic */
  uint32_t nsearching;     /* atomic */
  /* the parked worker blocked in epoll_wait for the runtime's I/O, or
   * NULL: written under park_mx, read without it as a hint (atomic) */
  struct bw__worker *io_leader;
  uint32_t io_polls;       /* atomic: looks at the epoll set, for park's stall check */
  pthread_mutex_t park_mx;
  bool workers_exit;       /* under park_mx */

  /* memory */
  pthread_mutex_t pool_mx;
  bw__chunk *chunks;
  bw__cache *caches;
  bw__cache *spare_caches;
  bw__counters ext_ctr; /* external threads (atomic adds) */
  int64_t alloc_left;   /* atomic: pool allocations the test hook still lets succeed */

  /* lifecycle */
  pthread_mutex_t life_mx;
  pthread_cond_t life_cv;
  uint64_t live;     /* atomic */
  uint64_t live_roots; /* atomic: live actors with BW__CF_ROOT */
  uint64_t stop_grace_ms;
  uint32_t ndedicated_running; /* under life_mx */
  pthread_t *zombies; /* exited dedicated threads to join, under life_mx */
  uint32_t nzombies, capzombies;

  /* stats (rare paths: atomic adds) */
  uint64_t dead[BW_DL__COUNT];
  uint64_t dead_internal; /* of those, the library's internal types */
  uint64_t rejected, spawned, exited, crashed;

  /* registry */
  pthread_rwlock_t reg_lock;
  bw__registry_ent *reg;
  uint32_t nreg, capreg;

  /* dead-letter and telemetry event subscribers (runtime/subs.h) */
  bw__subs dl_subs; /* 16 places */
  bw__subs ev_subs; /* 32 places */

  /* the logger (runtime/log.c): level, format, sink */
  bw__log log;

  bw__timers timers;
  uint64_t next_ref; /* atomic: monitor and request refs */

  /* nodes (bulwark/node.h): this runtime's node number (0 = not a node),
   * fixed at create; and the node layer's hook, installed once by
   * bw_node_start and never removed (the layer answers "not connected"
   * once stopped), freed by bw_runtime_destroy */
  uint32_t node_id;
  const struct bw__remote_ops *remote_ops; /* atomic */
  void *remote_ud;
  uint64_t forwarded; /* atomic: user messages handed to another node */

  /* the epoll set and watches (runtime/io.c), created by the first watch */
  struct bw__io *io; /* atomic */
};
typedef struct bw_runtime bw__runtime;

/* ------------------------------------------------------------------------ */
/* Cross-module internal API                                                  */

/*
 * A gate: back-pressure from something that is not an actor (a node's
 * channel with too much unacknowledged). While closed, an actor that sent
 * through it (bw__gate_wait) is muted at the end of that handler call, as
 * for an overloaded actor, until bw__gate_open. Same no-lost-wake-up
 * handshake as muting on an actor (mute.c, bw__mute_on).
 */
typedef struct bw__gate {
  uint32_t closed;        /* atomic */
  struct bw__qnode *muted; /* atomic: actors muted on it (a stack through their rq) */
} bw__gate;
/* Called by a sender after a send through g: mutes the running actor, if
 * any, at the end of its handler call while g is closed. */
static inline void bw__gate_wait(bw__gate *g) {
  if (bw__tl.cur != NULL && bw__tl.mute_on == BW_PID_NONE && bw__tl.mute_gate == NULL)
    bw__tl.mute_gate = g;
}
/* Opens g and reschedules the actors muted on it. */
void bw__gate_open(struct bw_runtime *rt, bw__gate *g);

/* An EXIT message sent because a linked actor died (its pub.flags). */
#define BW__MF_LINKEXIT (1u << 10)
/* Queued by the receiver to itself (counted in its self_queued; cleared
 * when popped, so handlers never see it). */
#define BW__MF_SELF (1u << 11)

/* The node layer (node/): what the runtime calls for a pid of another node.
 * deliver owns m from the call on: it forwards it, or dead-letters it
 * (noconnection) and answers a LINK or MONITOR as a dead peer would; it
 * returns bw__deliver's codes (BW_ENOCONN when not connected). */
typedef struct bw__remote_ops {
  int (*deliver)(struct bw_runtime *rt, struct bw__msg *m, void *ud);
  void (*destroy)(struct bw_runtime *rt, void *ud); /* at bw_runtime_destroy */
  /* whether a moved (pointer) payload of this type can cross: a serializer */
  bool (*can_move)(struct bw_runtime *rt, uint32_t type, void *ud);
  /* a supervisor's remote child: see bw__remote_spawn */
  int (*spawn)(bw_ctx_t *ctx, const bw_remote_child_t *rc, uint64_t *ref, void *ud);
} bw__remote_ops;
/* For a supervisor (in its handler), through the node layer's hook: asks
 * the first connected node of rc->nodes to start the child, linked to the
 * calling actor; *ref is the request's. The answer is a reply from the
 * child's pid (status 0) after the child's LINK, or a reply with an error
 * status; or a BW_MSG_REQUEST_TIMEOUT. Returns 0, BW_ENOTSUP (no node
 * started on this runtime, or none built), BW_ENOCONN (none of rc->nodes
 * connected), BW_EINVAL, or bw_request's codes. This is how supervisor/
 * reaches other nodes without including node/. */
int bw__remote_spawn(bw_ctx_t *ctx, const bw_remote_child_t *rc, uint64_t *ref);
/* A moved payload to pid may go: local, or the node layer can serialize
 * its type. */
bool bw__move_ok(struct bw_runtime *rt, bw_pid_t pid, uint32_t type);
/* Installs the node layer; BW_EALREADY if one is installed. */
int bw__remote_install(struct bw_runtime *rt, const bw__remote_ops *ops, void *ud);
static inline bool bw__pid_is_local(const struct bw_runtime *rt, bw_pid_t pid) {
  return BW__PID_NODE(pid) == rt->node_id;
}

/* This thread's cache and counters for rt (creating an external cache on
 * the first use by a thread the runtime does not own). */
bw__cache *bw__my_cache(bw__runtime *rt);
bw__counters *bw__my_counters(bw__runtime *rt);
static inline void bw__ctr_add(bw__runtime *rt, bw__counters *c, uint64_t *field, uint64_t n) {
  if (c == &rt->ext_ctr)
    bw__faa64(field, n); /* shared by external threads */
  else
    bw__st64_rlx(field, bw__ld64_rlx(field) + n); /* single writer; relaxed for readers */
}

/* application error codes (error_user.c): the registered text or name of
 * a code, or NULL */
const char *bw__error_user_text(int code);
const char *bw__error_user_name(int code);

bool bw__rt_running(const bw__runtime *rt);
uint64_t bw__now_ns(const bw__runtime *rt);
uint64_t bw__mono_ns(void); /* the monotonic clock, whatever the runtime's clock */
uint64_t bw__new_ref(bw__runtime *rt);

/* messages */
bw__msg *bw__msg_alloc(bw__runtime *rt, size_t payload);
void bw__msg_free(bw__runtime *rt, bw__msg *m); /* runs the moved dtor if still owned */
void bw__msg_release_node(bw__runtime *rt, bw__msg *m); /* node only */
bw_pid_t bw__current_pid(const bw__runtime *rt);
/* Delivers a prepared message to m->to. On BW_ENOPROC/EFULL/ESHUTDOWN the
 * message has been dead-lettered/bounced and freed (user) or handled
 * (system); with keep_on_reject set, a BW_EFULL reject leaves m to the caller. */
int bw__deliver(bw__runtime *rt, bw__msg *m, bool keep_on_reject);
/* Sends a system message (no payload or a reason). */
int bw__send_sys(bw__runtime *rt, bw_pid_t to, bw_pid_t from, int kind, uint64_t ref,
                 const bw_reason_t *reason);
/* Sends a reply with a status and no payload (requests that died unanswered). */
int bw__reply_status(bw__runtime *rt, bw_pid_t to, bw_pid_t from, uint64_t ref, int status);
bw__msg *bw__msg_new(bw__runtime *rt, bw_pid_t to, int kind, uint32_t type,
                     const void *data, size_t len);
/* Whether a message counts against a bounded mailbox: plain user messages
 * only. Signals must not be lost, and a reply was asked for, so neither is
 * ever refused nor takes a slot. */
static inline bool bw__msg_counts(const bw__msg *m) {
  return m->kind == BW__K_USER && !(m->pub.flags & BW_MSGF_REPLY);
}

/* mailbox & scheduling */
void bw__schedule(bw__runtime *rt, bw__actor *a);
void bw__sched_wake_all(bw__runtime *rt);
int bw__sched_start(bw__runtime *rt);
void bw__sched_join(bw__runtime *rt);

void bw__sched_add_spare(bw__runtime *rt);
static inline unsigned bw__nworkers(const bw__runtime *rt) {
  /* acquire: a spare's worker struct is initialised before it is counted */
  return bw__ld32_acq(&rt->nworkers_live);
}

/* watchdog */
void bw__watchdog_scan(bw__runtime *rt);
static inline void bw__watch_end(bw__thread *th) { bw__st64_rel(&th->busy_pid, 0); }

/* actors (actor.c, spawn.c, turn.c, mute.c, release.c, dedicated.c; what
 * only those files share is in runtime/actor_internal.h) */
enum { BW__RUN_IDLE = 0, BW__RUN_AGAIN = 1, BW__RUN_DEAD = 2, BW__RUN_MUTED = 3 };
void bw__unmute_all(bw__runtime *rt, bw__actor *a); /* reschedule a's muted senders */
void bw__wake_muted(bw__runtime *rt, bw__actor *a); /* an exit was signalled to a */
int bw__actor_run(bw__thread *th, bw__actor *a);
/* bw_spawn for a supervisor's child: opts->link set (the calling actor is
 * its parent), and child_id (a string that outlives the child: its spec's
 * id) is what bw_child_id answers in it */
int bw__spawn_child(bw_runtime_t *rt, const bw_behaviour_t *b, void *arg,
                    const bw_spawn_opts_t *opts, const char *child_id, bw_pid_t *out);
/* The behaviour pid runs (for the supervisor API's type check); BW_ENOPROC. */
int bw__actor_behaviour(struct bw_runtime *rt, bw_pid_t pid, const bw_behaviour_t **out);
bool bw__sched_handoff(bw__worker *w);
bool bw__sched_linger(bw__worker *w, const bw__mpsc_c *c, bool batch); /* wait briefly for more */
void bw__schedule_elsewhere(bw__runtime *rt, bw__actor *a); /* via the injection queue */ /* a long turn hands queued actors to a parked worker */
void bw__actor_crashed(bw__thread *th); /* after bw_fail unwound to a worker */
void bw__actor_die(bw__actor *a, const bw_reason_t *reason);
bw__actor_ext *bw__ext_get(bw__actor *a);
void bw__waiter_wake(bw__actor *a);
void bw__reason_set(bw_reason_t *r, int kind, int code, const char *text);
void bw__dedicated_reap(bw__runtime *rt);

/* links & monitors: handling of system messages on the receiving actor */
int bw__link_handle(bw__actor *a, bw__msg *m, bw_reason_t *die_reason);
void bw__link_on_exit(bw__actor *a, const bw_reason_t *reason);
void bw__link_bounce(bw__runtime *rt, bw__msg *m, const bw_reason_t *reason);
/* Sends an exit signal: urgent for a non-trapping target, a message in
 * order otherwise (and always for normal exits, which only unlink). */
int bw__exit_signal(bw__runtime *rt, bw_pid_t to, bw_pid_t from, const bw_reason_t *r,
                    bool link_exit);
/* Makes the actor exit before its next message (kill or forced shutdown). */
int bw__force_exit(bw__runtime *rt, bw_pid_t pid, uint32_t force);
/* Queues a's exit wake-up (no allocation) unless it is queued already,
 * and schedules a if it was idle; after setting a->force or a->urgent.
 * The caller holds a pin on a. */
void bw__exit_wake(struct bw_runtime *rt, bw__actor *a);
static inline bool bw__actor_exit_pending(bw__actor *a) {
  /* relaxed: a hint; the exit wake-up queued after setting either word
   * makes the owner look again */
  return bw__ld32_rlx(&a->force) != 0 || BW__LD_RLX(&a->urgent) != NULL;
}

/* requests */
int bw__request_on_reply(bw__actor *a, bw__msg *m); /* 1 = deliver, 0 = dropped */
int bw__request_on_timeout(bw__actor *a, bw__msg *m);
int bw__request_on_down(bw__actor *a, bw__msg *m); /* 1 = m rewritten as an ENOPROC reply */

void bw__request_on_exit(bw__actor *a);

/* continuations (then.c): after bw__request_on_reply/_timeout/_down said
 * "deliver", whether ref has a continuation; if so it is taken out of the
 * table, and bw__then_run runs it on m (instead of the handler) */
bool bw__then_take(bw__actor *a, uint64_t ref);
static inline bool bw__then_claim(bw__actor *a, uint64_t ref) {
  return a->ext->thens != NULL && bw__then_take(a, ref);
}
int bw__then_run(bw__actor *a, bw__msg *m); /* the continuation's return */
/* The turn's next message while BW__AF_HOLD is set: held messages once
 * the await is over, else the mailbox's, holding what must wait */
bw__qnode *bw__then_pop(bw__actor *a);
bool bw__then_held_ready(const bw__actor *a); /* held messages to replay now */
/* At exit: frees the pending continuations' closures (their fns never
 * run) and returns the held messages, in order, for the drain */
bw__msg *bw__then_on_exit(bw__actor *a);
/* deferred requests (defer.c), at exit: answers each BW_ENOREPLY */
void bw__defer_on_exit(bw__actor *a);

/* receive timeout */
void bw__rtimeout_touch(bw__actor *a);
int bw__rtimeout_check(bw__actor *a);

/* dead letters */
void bw__dead_letter(bw__runtime *rt, bw__msg *m, int reason);
void bw__dead_letter_init(bw__runtime *rt);
void bw__dead_letter_destroy(bw__runtime *rt);

/* events */
void bw__event_init(bw__runtime *rt);
void bw__event_destroy(bw__runtime *rt);

/* I/O (runtime/io.c): a BW__K_IO node is returned to its watch instead
 * of the pool (bw__msg_free); dispatch asks whether a readiness or deadline
 * message is still wanted (1: deliver as BW_MSG_IO; 0: drop it) */
void bw__io_msg_back(bw__runtime *rt, bw__msg *m);
/* bw_io_watch with a destructor for ud, run when the watch is removed
 * (unwatch or exit): the TCP helpers free their state with it */
int bw__io_watch(bw_ctx_t *ctx, int fd, uint32_t events, uint32_t flags, void *ud,
                 void (*dtor)(void *), bw_io_t *out);
int bw__io_on_msg(bw__actor *a, bw__msg *m);
void bw__io_on_exit(bw__actor *a);
void bw__io_destroy(bw__runtime *rt); /* after the workers are joined */
/* Polling, from the workers (scheduler.c): whether the runtime has an epoll
 * set; wait up to timeout_ms (-1: until ready or kicked) and return the
 * ready watches' events (the kick is drained and left out); deliver them
 * (the owners go on the calling worker's queue); wake the worker blocked
 * in the wait. */
struct epoll_event;
bool bw__io_on(bw__runtime *rt);
int bw__io_poll(bw__runtime *rt, struct epoll_event *evs, int cap, int timeout_ms);
void bw__io_fire(bw__runtime *rt, const struct epoll_event *evs, int n);
void bw__io_kick(bw__runtime *rt);
/* The epoll set was just created: a parked worker comes to wait in it. */
void bw__sched_io_started(bw__runtime *rt);

/* inboxes (inbox.c): bw_runtime_stop closes every inbox of rt (receives
 * then return BW_ESHUTDOWN) before it waits for the live count;
 * bw_runtime_destroy frees those the application left */
void bw__inbox_stop(bw__runtime *rt);
void bw__inbox_destroy_all(bw__runtime *rt);
/* bw_call_named's steps (named.c): a request from the inbox to name's
 * holder, resolved and sent under the registry's lock; the reply the last
 * receive returned, into *out as bw_call gives it */
int bw__inbox_request_named(bw_inbox_t *ib, const char *name, uint32_t type, const void *data,
                            size_t len, uint64_t timeout_ms, uint64_t *ref);
void bw__inbox_reply_out(bw_inbox_t *ib, const bw_msg_t *msg, bw_reply_t *out);

/* registry */
void bw__registry_drop_pid(bw__runtime *rt, bw_pid_t pid);
int bw__registry_add(bw__runtime *rt, const char *name, bw_pid_t pid);
/* Runs fn with name's live holder (or BW_PID_NONE), the name held still
 * for its length (registry.c); returns fn's code, or BW_EINVAL (bad name) */
typedef int (*bw__named_fn)(bw__runtime *rt, bw_pid_t pid, void *ud);
int bw__registry_with(bw__runtime *rt, const char *name, bw__named_fn fn, void *ud);
void bw__registry_destroy(bw__runtime *rt);

#endif
