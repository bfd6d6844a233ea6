/*
 * fuzz_api: bytes -> a sequence of public API calls against one live
 * runtime (manual clock, 2 workers, created once per process), checked
 * against a model of what each call must do.
 *
 * The actors are "puppets": a tiny behaviour that counts what it receives
 * (notes, exit messages, DOWNs, replies, request timeouts, moved payloads)
 * and, asked by a bw_call from the harness, runs one of the calls that
 * need an actor (link, unlink, monitor, demonitor, request, spawn_link,
 * trap_exit, send, exit), answering with the call's return code. Calls
 * that need no actor (spawn, send, send_named, send_move, exit, timers,
 * clock, register, unregister, whereis) run on the harness's thread.
 *
 * The model knows which puppet is alive, its links, monitors, trap flag,
 * names, pending timers and what each puppet must have counted. Whenever
 * the model says a call kills puppets (a stop, crash or bw_fail message,
 * an exit signal, a link cascade), the harness waits until each one has
 * exited and compares its exit reason (as its terminate callback saw it);
 * so at each call the model's view
 * of who is alive is the runtime's, and return codes are checked exactly
 * (ENOPROC for a dead pid, EEXIST for a taken name, ENOTFOUND for a
 * fired timer, ...). A "sync" pings every live puppet (bw_call; a
 * puppet's mailbox is FIFO, so everything sent before has been handled)
 * and compares its counters with the model's. Puppets with a bounded
 * mailbox may refuse messages (BW_EFULL) depending on timing: their
 * counters are checked as upper bounds.
 *
 * At the end of each input the harness kills every puppet it spawned,
 * fires every timer it set, and checks that the runtime has no actor left
 * over, that the accounting invariant sent == handled + dead letters
 * holds, and that every moved payload was freed exactly once. So inputs
 * do not leak into each other, and a run is as deterministic as the
 * model: any disagreement aborts (a crash to libFuzzer).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bulwark/bulwark.h"
#include "tests/fuzz/fuzz_input.h"

#define MAX_SLOTS 10   /* puppets per input, dead ones included */
#define MAX_OPS 96     /* calls per input */
#define MAX_TIMERS 24
#define MAX_MONS 24
#define NNAMES 4

static int g_verbose = -1;

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "fuzz_api: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                          \
    }                                                                                   \
  } while (0)

/* rc must be exactly want */
#define CHECK_RC(rc, want)                                                              \
  do {                                                                                  \
    int rc_ = (rc), want_ = (want);                                                     \
    if (rc_ != want_) {                                                                 \
      fprintf(stderr, "fuzz_api: %s:%d: %s gave %s, the model says %s\n", __FILE__,      \
              __LINE__, #rc, bw_err_name(rc_), bw_err_name(want_));                     \
      abort();                                                                          \
    }                                                                                   \
  } while (0)

/* --- the puppet ------------------------------------------------------------------ */

enum {
  T_NOTE = 1, /* counted */
  T_STOP,     /* handler returns BW_STOP: exit normal */
  T_CRASH,    /* handler returns BW_ECRASH: exit crash */
  T_FAIL,     /* bw_fail: exit crash */
  T_MOVED,    /* a moved payload (len odd: the handler takes and frees it) */
  T_REQ,      /* a request: answered with status 0 */
  T_CMD,      /* from the harness, by bw_call: run one call, reply with its rc */
};

enum {
  C_PING,
  C_LINK,
  C_UNLINK,
  C_MONITOR,
  C_DEMONITOR,
  C_REQUEST,
  C_SPAWN_LINK,
  C_TRAP,
  C_SEND,
  C_EXIT,
  C_EXIT_SELF,
};

typedef struct counters {
  uint32_t notes, exits, downs, rep_ok, rep_noproc, rto, answered, moved;
} counters_t;

typedef struct cmd {
  int32_t op;
  int32_t kind;    /* C_EXIT, C_EXIT_SELF: reason kind; C_TRAP: on; C_SEND: type */
  bw_pid_t target; /* C_LINK, C_UNLINK, C_MONITOR, C_REQUEST, C_SEND, C_EXIT */
  uint64_t arg;    /* C_DEMONITOR: ref; C_REQUEST: timeout ms; C_SPAWN_LINK: 1 = trap */
} cmd_t;

typedef struct cmd_reply {
  int32_t rc;
  uint64_t out; /* a monitor ref, a request ref, a spawned pid */
  counters_t c;
} cmd_reply_t;

typedef struct puppet {
  counters_t c;
} puppet_t;

static uint64_t g_dtor_calls; /* moved payloads freed (atomic: any thread) */

static void moved_dtor(void *p) {
  free(p);
  __atomic_fetch_add(&g_dtor_calls, 1, __ATOMIC_RELAXED);
}

/* Exit reasons as terminate saw them (it does not run after an untrappable
 * kill): bw_wait_exit on a pid already gone says noproc, so this is how the
 * harness learns a reason. Reset for each input. */
#define MAX_TERMS 64
static pthread_mutex_t g_term_mx = PTHREAD_MUTEX_INITIALIZER;
static struct {
  bw_pid_t pid;
  int kind;
} g_terms[MAX_TERMS];
static int g_nterms;

static void puppet_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *r) {
  (void)state;
  pthread_mutex_lock(&g_term_mx);
  if (g_nterms < MAX_TERMS) {
    g_terms[g_nterms].pid = bw_self(ctx);
    g_terms[g_nterms++].kind = r->kind;
  }
  pthread_mutex_unlock(&g_term_mx);
}

/* The reason terminate saw for pid, or -1 if it did not run. */
static int term_reason(bw_pid_t pid) {
  int k = -1;
  pthread_mutex_lock(&g_term_mx);
  for (int i = 0; i < g_nterms; i++)
    if (g_terms[i].pid == pid)
      k = g_terms[i].kind;
  pthread_mutex_unlock(&g_term_mx);
  return k;
}

static int puppet_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *m);
static const bw_behaviour_t puppet = {.name = "puppet",
                                      .state_size = sizeof(puppet_t),
                                      .handle = puppet_handle,
                                      .terminate = puppet_terminate};

static int run_cmd(bw_ctx_t *ctx, const cmd_t *c, uint64_t *out) {
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  switch (c->op) {
  case C_PING:
    return 0;
  case C_LINK:
    return bw_link(ctx, c->target);
  case C_UNLINK:
    return bw_unlink(ctx, c->target);
  case C_MONITOR:
    return bw_monitor(ctx, c->target, out);
  case C_DEMONITOR:
    return bw_demonitor(ctx, c->arg);
  case C_REQUEST:
    return bw_request(ctx, c->target, T_REQ, "q", 1, c->arg, out);
  case C_SPAWN_LINK: {
    bw_spawn_opts_t o;
    bw_spawn_opts_init(&o);
    o.link = true;
    o.trap_exit = c->arg & 1;
    bw_pid_t pid = BW_PID_NONE;
    int rc = bw_spawn(rt, &puppet, NULL, &o, &pid);
    *out = pid;
    return rc;
  }
  case C_TRAP:
    bw_trap_exit(ctx, c->kind != 0);
    return 0;
  case C_SEND:
    return bw_send(rt, c->target, (uint32_t)c->kind, "s", 1);
  case C_EXIT:
    return bw_exit(rt, c->target, c->kind, BW_ECRASH, "fuzz exit");
  case C_EXIT_SELF:
    return bw_exit_self(ctx, c->kind, BW_ECRASH, "fuzz exit_self");
  default:
    return BW_EINVAL;
  }
}

static int puppet_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *m) {
  puppet_t *p = state;
  if (m->flags & BW_MSGF_REPLY) {
    if (m->status == 0)
      p->c.rep_ok++;
    else if (m->status == BW_ENOPROC)
      p->c.rep_noproc++;
    return BW_CONTINUE;
  }
  switch (m->type) {
  case BW_MSG_EXIT: p->c.exits++; return BW_CONTINUE;
  case BW_MSG_DOWN: p->c.downs++; return BW_CONTINUE;
  case BW_MSG_REQUEST_TIMEOUT: p->c.rto++; return BW_CONTINUE;
  case T_NOTE: p->c.notes++; return BW_CONTINUE;
  case T_STOP: return BW_STOP;
  case T_CRASH: return BW_ECRASH;
  case T_FAIL: bw_fail(ctx, BW_ECRASH, "fuzz %s", "fail");
  case T_MOVED:
    p->c.moved++;
    if (m->len & 1) {
      void *q = bw_msg_take(ctx, m);
      if (q != NULL)
        moved_dtor(q);
    }
    return BW_CONTINUE;
  case T_REQ:
    if (m->flags & BW_MSGF_REQUEST) {
      p->c.answered++;
      bw_reply(ctx, m, 0, T_NOTE, NULL, 0);
    }
    return BW_CONTINUE;
  case T_CMD: {
    cmd_t c;
    if (m->len != sizeof c)
      return BW_ECRASH;
    memcpy(&c, m->data, sizeof c);
    cmd_reply_t r;
    memset(&r, 0, sizeof r);
    r.rc = run_cmd(ctx, &c, &r.out);
    r.c = p->c;
    bw_reply(ctx, m, 0, T_CMD, &r, sizeof r);
    return BW_CONTINUE;
  }
  default:
    return BW_CONTINUE;
  }
}

/* --- the runtime, once per process ------------------------------------------------ */

static bw_runtime_t *g_rt;
static uint64_t g_inputs, g_ops, g_deaths, g_syncs;

static void rt_down(void) {
  if (getenv("BW_FUZZ_STATS") != NULL)
    fprintf(stderr, "fuzz_api: %llu inputs, %llu calls, %llu deaths, %llu syncs\n",
            (unsigned long long)g_inputs, (unsigned long long)g_ops,
            (unsigned long long)g_deaths, (unsigned long long)g_syncs);
  bw_runtime_destroy(g_rt);
  g_rt = NULL;
}

static bw_runtime_t *rt_get(void) {
  if (g_rt == NULL) {
    bw_runtime_opts_t o;
    bw_runtime_opts_init(&o);
    o.log_level = BW_LOG_OFF; /* inputs crash actors by the thousand: no reports */
    o.workers = 2;
    o.manual_clock = true;
    CHECK(bw_runtime_create(&o, &g_rt) == 0);
    atexit(rt_down);
    g_verbose = getenv("BW_FUZZ_VERBOSE") != NULL;
  }
  return g_rt;
}

/* --- the model --------------------------------------------------------------------- */

typedef struct slot {
  bw_pid_t pid;
  bool alive, trap, exact; /* exact: unbounded mailbox, counters exact */
  bool killed;             /* by an untrappable kill: terminate does not run */
  uint32_t cap;
  int reason; /* exit reason kind once dead */
  /* another reason it may have exited with, or -1: a message that kills
   * it, fired by the same clock advance as the exit signal of a linked
   * slot, may be handled before that signal arrives (two senders, no
   * order between them) */
  int alt_reason;
  bool spread;    /* its death killed a linked slot (then no alternative) */
  uint32_t links; /* bit i: linked to slot i */
  counters_t c;
} slot_t;

typedef struct mon {
  uint64_t ref;
  int watcher, target;
  bool active;
} mon_t;

enum { TM_PENDING, TM_DONE, TM_UNSURE }; /* UNSURE: an interval whose target died meanwhile */

typedef struct tmr {
  bw_timer_t id;
  int target; /* slot, or -1: a pid of nobody */
  uint64_t due, period;
  uint32_t type;
  int state;
  uint64_t seq;
} tmr_t;

typedef struct model {
  slot_t s[MAX_SLOTS];
  int n;
  mon_t mon[MAX_MONS];
  int nmon;
  tmr_t t[MAX_TIMERS];
  int nt;
  uint64_t tseq;
  int names[NNAMES]; /* slot that holds name i, or -1 */
  int dying[MAX_SLOTS]; /* slots the model just killed, to wait for */
  int ndying;
  bool kill_now; /* model_die is for an untrappable kill (bw_exit kill) */
  uint64_t moved_owned; /* moved payloads the runtime took */
} model_t;

static const char *const names[NNAMES] = {"fz.a", "fz.b", "fz.c", "fz.d"};

static int slot_of(const model_t *m, bw_pid_t pid) {
  for (int i = 0; i < m->n; i++)
    if (m->s[i].pid == pid)
      return i;
  return -1;
}

/* The model's death of slot x with reason kind k, and its cascade. */
static void model_die(model_t *m, int x, int k) {
  int work[MAX_SLOTS * 2], kinds[MAX_SLOTS * 2], nw = 0;
  work[nw] = x, kinds[nw++] = k;
  bool direct = m->kill_now;
  while (nw > 0) {
    nw--;
    int d = work[nw], dk = kinds[nw];
    slot_t *s = &m->s[d];
    if (!s->alive)
      continue;
    s->alive = false;
    s->reason = dk;
    /* terminate is skipped only after the untrappable kill itself, not
     * after an exit signal that carries reason killed (a killed link, or
     * bw_exit with kind killed): actor.h. (Found by this harness; the input
     * is regress/fuzz_api/terminate-after-linked-kill.) */
    s->killed = dk == BW_REASON_KILLED && d == x && direct;
    m->dying[m->ndying++] = d;
    for (int i = 0; i < NNAMES; i++)
      if (m->names[i] == d)
        m->names[i] = -1;
    for (int y = 0; y < m->n; y++) {
      if (!(s->links & (1u << y)))
        continue;
      s->links &= ~(1u << y);
      slot_t *ys = &m->s[y];
      ys->links &= ~(1u << d);
      if (!ys->alive)
        continue;
      if (ys->trap)
        ys->c.exits++;
      else if (dk != BW_REASON_NORMAL) {
        work[nw] = y, kinds[nw++] = dk;
        s->spread = true;
      }
    }
    for (int i = 0; i < m->nmon; i++) {
      mon_t *mo = &m->mon[i];
      if (!mo->active)
        continue;
      if (mo->target == d) {
        mo->active = false;
        if (m->s[mo->watcher].alive)
          m->s[mo->watcher].c.downs++;
      } else if (mo->watcher == d) {
        mo->active = false;
      }
    }
  }
}

/* An exit signal of kind k (bw_exit) at slot x. */
static void model_signal(model_t *m, int x, int k) {
  slot_t *s = &m->s[x];
  if (!s->alive)
    return;
  if (k == BW_REASON_KILL) {
    m->kill_now = true;
    model_die(m, x, BW_REASON_KILLED);
    m->kill_now = false;
  }
  else if (s->trap)
    s->c.exits++;
  else if (k != BW_REASON_NORMAL)
    model_die(m, x, k);
}

/* A user message of type ty handled by slot x (alive). */
static void model_deliver(model_t *m, int x, uint32_t ty) {
  slot_t *s = &m->s[x];
  switch (ty) {
  case T_NOTE: s->c.notes++; break;
  case T_STOP: model_die(m, x, BW_REASON_NORMAL); break;
  case T_CRASH: case T_FAIL: model_die(m, x, BW_REASON_CRASH); break;
  default: break;
  }
}

/* --- waiting for the runtime to agree --------------------------------------------- */

static void relax(unsigned *spins) {
  if (++*spins > 64) {
    struct timespec ts = {0, 50 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Waits until every slot the model killed has exited, with its reason. */
static void await_deaths(model_t *m) {
  for (int i = 0; i < m->ndying; i++) {
    slot_t *s = &m->s[m->dying[i]];
    unsigned spins = 0;
    time_t t0 = time(NULL);
    while (bw_is_alive(g_rt, s->pid)) {
      if (time(NULL) - t0 > 20) {
        fprintf(stderr, "fuzz_api: slot %d should have exited (%s) and did not\n",
                m->dying[i], bw_reason_kind_name(s->reason));
        abort();
      }
      relax(&spins);
    }
    bw_reason_t r;
    CHECK_RC(bw_wait_exit(g_rt, s->pid, 0, &r), 0);
    CHECK(r.kind == s->reason || r.kind == s->alt_reason || r.kind == BW_REASON_NOPROC);
    int seen = term_reason(s->pid);
    if (seen != (s->killed ? -1 : s->reason) && (s->alt_reason < 0 || seen != s->alt_reason)) {
      fprintf(stderr, "fuzz_api: slot %d: terminate saw %s, the model says %s\n", m->dying[i],
              seen < 0 ? "(not run)" : bw_reason_kind_name(seen),
              s->killed ? "(not run)" : bw_reason_kind_name(s->reason));
      abort();
    }
    g_deaths++;
  }
  m->ndying = 0;
}

/* bw_call to a puppet, retried while its bounded mailbox is full. */
static int call(const slot_t *s, const cmd_t *c, cmd_reply_t *out) {
  bw_reply_t r;
  int rc;
  unsigned spins = 0;
  while ((rc = bw_call(g_rt, s->pid, T_CMD, c, sizeof *c, 0, &r)) == BW_EFULL)
    relax(&spins);
  if (rc != 0)
    return rc;
  CHECK(r.type == T_CMD && r.len == sizeof *out);
  memcpy(out, r.data, sizeof *out);
  return 0;
}

static void check_counters(int i, const slot_t *s, const counters_t *got) {
  const counters_t *w = &s->c;
#define CMP(f)                                                                           \
  if (s->exact ? got->f != w->f : got->f > w->f) {                                       \
    fprintf(stderr, "fuzz_api: slot %d counted %u " #f ", the model %s %u\n", i, got->f, \
            s->exact ? "says" : "allows at most", w->f);                                 \
    abort();                                                                             \
  }
  CMP(notes) CMP(exits) CMP(downs) CMP(rep_ok) CMP(rep_noproc) CMP(rto) CMP(answered)
  CMP(moved)
#undef CMP
}

static void ping(model_t *m, int i) {
  cmd_t c = {.op = C_PING};
  cmd_reply_t r;
  CHECK_RC(call(&m->s[i], &c, &r), 0);
  CHECK_RC(r.rc, 0);
  check_counters(i, &m->s[i], &r.c);
}

/* Every live puppet has handled what was sent to it; counters agree. */
static void sync_all(model_t *m) {
  g_syncs++;
  for (int i = 0; i < m->n; i++) {
    CHECK(bw_is_alive(g_rt, m->s[i].pid) == m->s[i].alive);
    if (m->s[i].alive)
      ping(m, i);
  }
}

/* --- the calls ------------------------------------------------------------------- */

static bw_pid_t pick_pid(fz_t *f, const model_t *m) {
  unsigned k = fz_u8(f);
  if (m->n > 0 && k < 224)
    return m->s[k % m->n].pid;
  if (k < 240)
    return BW_PID_NONE;
  if (k < 248 && m->n > 0)
    return m->s[k % m->n].pid ^ ((uint64_t)1 << (fz_u8(f) % 64)); /* a near miss */
  return fz_u64(f);
}

static int pick_live(fz_t *f, const model_t *m) {
  int alive[MAX_SLOTS], n = 0;
  for (int i = 0; i < m->n; i++)
    if (m->s[i].alive)
      alive[n++] = i;
  return n == 0 ? -1 : alive[fz_below(f, (unsigned)n)];
}

static uint32_t pick_type(fz_t *f) {
  unsigned k = fz_below(f, 16);
  return k < 10 ? T_NOTE : k < 12 ? T_STOP : k < 14 ? T_CRASH : T_FAIL;
}

static int new_slot(model_t *m, bw_pid_t pid, bool trap, uint32_t cap) {
  slot_t *s = &m->s[m->n];
  memset(s, 0, sizeof *s);
  s->pid = pid;
  s->alive = true;
  s->trap = trap;
  s->cap = cap;
  s->exact = cap == 0;
  s->alt_reason = -1;
  return m->n++;
}

static void op_spawn(fz_t *f, model_t *m) {
  if (m->n >= MAX_SLOTS)
    return;
  uint8_t b = fz_u8(f);
  bw_spawn_opts_t o;
  bw_spawn_opts_init(&o);
  o.trap_exit = b & 1;
  static const uint32_t caps[] = {0, 0, 1, 4};
  o.mailbox_capacity = caps[(b >> 1) & 3];
  int name = (b & 8) ? (int)((b >> 4) & 3) : -1;
  o.name = name >= 0 ? names[name] : NULL;
  bool link = (b & 0xC0) == 0xC0; /* from outside an actor: refused */
  o.link = link;
  bw_pid_t pid = BW_PID_NONE;
  int rc = bw_spawn(g_rt, &puppet, NULL, &o, &pid);
  if (link) {
    CHECK_RC(rc, BW_ENOTACTOR);
    return;
  }
  if (name >= 0 && m->names[name] >= 0) {
    CHECK_RC(rc, BW_EEXIST);
    return;
  }
  CHECK_RC(rc, 0);
  CHECK(pid != BW_PID_NONE && slot_of(m, pid) < 0);
  int x = new_slot(m, pid, o.trap_exit, o.mailbox_capacity);
  if (name >= 0)
    m->names[name] = x;
}

/* A send of type ty to pid, from the harness (actor < 0) or from a puppet. */
static void expect_send(model_t *m, bw_pid_t pid, uint32_t ty, int rc) {
  int x = slot_of(m, pid);
  if (x < 0 || !m->s[x].alive) {
    if (pid == BW_PID_NONE && rc == BW_EINVAL)
      return;
    CHECK_RC(rc, BW_ENOPROC);
    return;
  }
  if (rc == BW_EFULL && m->s[x].cap > 0)
    return;
  CHECK_RC(rc, 0);
  model_deliver(m, x, ty);
}

static void op_send(fz_t *f, model_t *m) {
  bw_pid_t pid = pick_pid(f, m);
  uint8_t b = fz_u8(f);
  uint32_t ty = pick_type(f);
  static char buf[BW_MSG_INLINE_MAX + 8];
  if (b < 16) { /* argument errors: nothing is sent */
    switch (b & 3) {
    case 0: CHECK_RC(bw_send(g_rt, pid, T_NOTE, buf, BW_MSG_INLINE_MAX + 1), BW_ETOOBIG); break;
    case 1: CHECK_RC(bw_send(g_rt, pid, T_NOTE, NULL, 4), BW_EINVAL); break;
    case 2: CHECK_RC(bw_send(g_rt, pid, BW_MSG_SYSTEM_BASE + (b >> 2), buf, 0), BW_EINVAL); break;
    default: CHECK_RC(bw_send(NULL, pid, T_NOTE, buf, 1), BW_EINVAL); break;
    }
    return;
  }
  size_t len = b % (BW_MSG_INLINE_MAX + 1);
  int rc = bw_send(g_rt, pid, ty, len ? buf : NULL, len);
  expect_send(m, pid, ty, rc);
}

static void op_send_named(fz_t *f, model_t *m) {
  int name = (int)fz_below(f, NNAMES);
  uint32_t ty = pick_type(f);
  int rc = bw_send_named(g_rt, names[name], ty, "n", 1);
  int x = m->names[name];
  if (x < 0) {
    CHECK_RC(rc, BW_ENOTFOUND);
    return;
  }
  expect_send(m, m->s[x].pid, ty, rc);
}

static void op_send_move(fz_t *f, model_t *m) {
  bw_pid_t pid = pick_pid(f, m);
  size_t len = 1 + fz_below(f, 255); /* odd: the puppet takes it */
  void *p = malloc(len);
  CHECK(p != NULL);
  memset(p, 0x6B, len);
  int rc = bw_send_move(g_rt, pid, T_MOVED, p, len, moved_dtor);
  int x = slot_of(m, pid);
  if (rc == 0 || rc == BW_ENOPROC)
    m->moved_owned++;
  else
    free(p); /* refused: still ours */
  if (x < 0 || !m->s[x].alive) {
    if (!(pid == BW_PID_NONE && rc == BW_EINVAL))
      CHECK_RC(rc, BW_ENOPROC);
    return;
  }
  if (rc == BW_EFULL && m->s[x].cap > 0)
    return;
  CHECK_RC(rc, 0);
  m->s[x].c.moved++;
}

static void op_exit(fz_t *f, model_t *m) {
  bw_pid_t pid = pick_pid(f, m);
  unsigned k = fz_below(f, 10);
  static const int kinds[] = {BW_REASON_NORMAL, BW_REASON_SHUTDOWN, BW_REASON_KILL,
                              BW_REASON_CRASH, BW_REASON_KILLED, BW_REASON_NOPROC,
                              BW_REASON_KILL, BW_REASON_SHUTDOWN};
  int kind = k < 8 ? kinds[k] : (k == 8 ? BW_REASON__COUNT : -1);
  int rc = bw_exit(g_rt, pid, kind, BW_ECRASH, "fuzz");
  if (kind < 0 || kind >= BW_REASON__COUNT) {
    CHECK_RC(rc, BW_EINVAL);
    return;
  }
  int x = slot_of(m, pid);
  if (x < 0 || !m->s[x].alive) {
    if (!(pid == BW_PID_NONE && rc == BW_EINVAL))
      CHECK_RC(rc, BW_ENOPROC);
    return;
  }
  CHECK_RC(rc, 0);
  model_signal(m, x, kind);
}

/* The calls a puppet makes for the harness. */
static void op_puppet(fz_t *f, model_t *m) {
  int a = pick_live(f, m);
  if (a < 0)
    return;
  slot_t *as = &m->s[a];
  cmd_t c;
  memset(&c, 0, sizeof c);
  cmd_reply_t r;
  unsigned op = fz_below(f, 10);
  bw_pid_t pid = pick_pid(f, m);
  int y = slot_of(m, pid);
  bool y_alive = y >= 0 && m->s[y].alive;
  switch (op) {
  case 0: /* link */
    c.op = C_LINK, c.target = pid;
    CHECK_RC(call(as, &c, &r), 0);
    if (pid == as->pid || pid == BW_PID_NONE) {
      CHECK_RC(r.rc, BW_EINVAL);
    } else if (!y_alive) {
      CHECK_RC(r.rc, BW_ENOPROC);
      if (as->trap)
        as->c.exits++;
    } else {
      CHECK_RC(r.rc, 0);
      as->links |= 1u << y;
      m->s[y].links |= 1u << a;
    }
    break;
  case 1: /* unlink */
    c.op = C_UNLINK, c.target = pid;
    CHECK_RC(call(as, &c, &r), 0);
    CHECK_RC(r.rc, pid == BW_PID_NONE ? BW_EINVAL : 0);
    if (y >= 0) {
      as->links &= ~(1u << y);
      m->s[y].links &= ~(1u << a);
    }
    break;
  case 2: /* monitor */
    if (m->nmon >= MAX_MONS)
      break;
    c.op = C_MONITOR, c.target = pid;
    CHECK_RC(call(as, &c, &r), 0);
    if (pid == BW_PID_NONE && r.rc == BW_EINVAL)
      break;
    CHECK_RC(r.rc, 0);
    CHECK(r.out != 0);
    if (y_alive && y != a) {
      m->mon[m->nmon++] = (mon_t){r.out, a, y, true};
    } else if (y != a) {
      as->c.downs++; /* at once, reason noproc */
      m->mon[m->nmon++] = (mon_t){r.out, a, -1, false};
    }
    break;
  case 3: { /* demonitor: one of ours, someone else's, or a made-up ref */
    unsigned k = fz_u8(f);
    const mon_t *mo = m->nmon > 0 && k < 200 ? &m->mon[k % m->nmon] : NULL;
    c.op = C_DEMONITOR, c.arg = mo ? mo->ref : fz_u64(f);
    CHECK_RC(call(as, &c, &r), 0);
    bool known = false;
    for (int i = 0; i < m->nmon; i++)
      known |= m->mon[i].ref == c.arg;
    if (mo != NULL && mo->active && mo->watcher == a) {
      CHECK_RC(r.rc, 0);
      for (int i = 0; i < m->nmon; i++)
        if (m->mon[i].ref == c.arg)
          m->mon[i].active = false;
    } else if (mo != NULL || !known) {
      CHECK_RC(r.rc, BW_ENOTFOUND);
    }
    break;
  }
  case 4: { /* request: settled before the next call (pings) */
    c.op = C_REQUEST, c.target = pid;
    c.arg = fz_bool(f) ? 0 : 1 + fz_below(f, 50);
    CHECK_RC(call(as, &c, &r), 0);
    if (y_alive) {
      if (r.rc == BW_EFULL && m->s[y].cap > 0)
        break;
      CHECK_RC(r.rc, 0);
      m->s[y].c.answered++;
      as->c.rep_ok++;
      if (y != a)
        ping(m, y);
      ping(m, a);
      ping(m, a);
    } else {
      if (pid == BW_PID_NONE && r.rc == BW_EINVAL)
        break;
      if (r.rc == 0)
        as->c.rep_noproc++;
      else
        CHECK_RC(r.rc, BW_ENOPROC);
      ping(m, a);
    }
    break;
  }
  case 5: /* spawn_link */
    if (m->n >= MAX_SLOTS)
      break;
    c.op = C_SPAWN_LINK, c.arg = fz_bool(f);
    CHECK_RC(call(as, &c, &r), 0);
    CHECK_RC(r.rc, 0);
    {
      int x = new_slot(m, r.out, c.arg & 1, 0);
      m->s[x].links |= 1u << a;
      as->links |= 1u << x;
    }
    break;
  case 6: /* trap_exit */
    c.op = C_TRAP, c.kind = fz_bool(f);
    CHECK_RC(call(as, &c, &r), 0);
    CHECK_RC(r.rc, 0);
    as->trap = c.kind != 0;
    break;
  case 7: /* send from an actor (to itself too) */
    c.op = C_SEND, c.target = pid, c.kind = (int32_t)pick_type(f);
    CHECK_RC(call(as, &c, &r), 0);
    expect_send(m, pid, (uint32_t)c.kind, r.rc);
    break;
  case 8: { /* exit signal from an actor */
    static const int kinds[] = {BW_REASON_NORMAL, BW_REASON_SHUTDOWN, BW_REASON_KILL,
                                BW_REASON_CRASH};
    c.op = C_EXIT, c.target = pid, c.kind = kinds[fz_below(f, 4)];
    CHECK_RC(call(as, &c, &r), 0);
    if (!y_alive) {
      if (!(pid == BW_PID_NONE && r.rc == BW_EINVAL))
        CHECK_RC(r.rc, BW_ENOPROC);
    } else {
      CHECK_RC(r.rc, 0);
      model_signal(m, y, c.kind);
    }
    break;
  }
  default: { /* exit_self */
    static const int kinds[] = {BW_REASON_SHUTDOWN, BW_REASON_CRASH, BW_REASON_NORMAL, 99};
    c.op = C_EXIT_SELF, c.kind = kinds[fz_below(f, 4)];
    CHECK_RC(call(as, &c, &r), 0);
    if (c.kind == 99 || c.kind == BW_REASON_NORMAL) {
      /* "for a reason other than normal": both refused, or normal accepted */
      if (r.rc == 0)
        model_die(m, a, c.kind);
      else
        CHECK_RC(r.rc, BW_EINVAL);
    } else {
      CHECK_RC(r.rc, 0);
      model_die(m, a, c.kind);
    }
    break;
  }
  }
}

static void op_timer(fz_t *f, model_t *m) {
  if (m->nt >= MAX_TIMERS)
    return;
  bw_pid_t pid = pick_pid(f, m);
  int x = slot_of(m, pid);
  uint8_t b = fz_u8(f);
  uint64_t ms = fz_below(f, 40);
  uint32_t ty = pick_type(f);
  if (x >= 0 && m->s[x].cap > 0)
    ty = T_NOTE; /* a timer's message to a full mailbox: the model cannot know */
  bw_timer_t id = 0;
  int rc;
  bool interval = b & 1;
  if (interval) {
    ty = T_NOTE;
    rc = bw_send_interval(g_rt, pid, ms, ty, "t", 1, &id);
    if (ms == 0) {
      CHECK_RC(rc, BW_EINVAL);
      return;
    }
  } else {
    rc = bw_send_after(g_rt, pid, ms, ty, "t", 1, &id);
  }
  if (pid == BW_PID_NONE && rc == BW_EINVAL)
    return;
  CHECK_RC(rc, 0);
  CHECK(id != 0);
  tmr_t *t = &m->t[m->nt++];
  t->id = id;
  t->target = x >= 0 ? x : -1;
  t->due = bw_now_ms(g_rt) + ms;
  t->period = interval ? ms : 0;
  t->type = ty;
  t->state = TM_PENDING;
  t->seq = m->tseq++;
}

static void op_cancel(fz_t *f, model_t *m) {
  unsigned k = fz_u8(f);
  if (m->nt == 0 || k >= 224) {
    bw_timer_t id = k >= 240 ? 0 : fz_u64(f);
    bool ours = false;
    for (int i = 0; i < m->nt; i++)
      ours |= m->t[i].id == id;
    if (ours)
      return;
    int rc = bw_timer_cancel(g_rt, id);
    if (!(rc == BW_EINVAL || rc == BW_ENOTFOUND))
      CHECK_RC(rc, BW_ENOTFOUND);
    return;
  }
  tmr_t *t = &m->t[k % m->nt];
  int rc = bw_timer_cancel(g_rt, t->id);
  if (t->state == TM_PENDING)
    CHECK_RC(rc, 0);
  else if (t->state == TM_DONE)
    CHECK_RC(rc, BW_ENOTFOUND);
  else if (rc != 0)
    CHECK_RC(rc, BW_ENOTFOUND);
  t->state = TM_DONE;
}

/* Moves the clock; the model fires what is due in (due, set order). A tick
 * for a puppet that an earlier tick of the same advance doomed (a stop or
 * crash message, or a link cascade from one) finds it alive or gone,
 * depending on how far its exit got: its message is not counted (dead
 * puppets are never pinged), and an interval timer may or may not end
 * there (TM_UNSURE) until a tick after the death is awaited. */
static void op_advance(model_t *m, uint64_t ms) {
  uint64_t now = bw_now_ms(g_rt), end = now + ms;
  bool doomed[MAX_SLOTS] = {false};
  for (;;) {
    tmr_t *next = NULL;
    for (int i = 0; i < m->nt; i++) {
      tmr_t *t = &m->t[i];
      if (t->state == TM_DONE || t->due > end)
        continue;
      if (next == NULL || t->due < next->due || (t->due == next->due && t->seq < next->seq))
        next = t;
    }
    if (next == NULL)
      break;
    int x = next->target;
    bool alive = x >= 0 && m->s[x].alive && !doomed[x];
    bool unsure = x >= 0 && doomed[x];
    if (unsure && !m->s[x].spread && !m->s[x].killed && m->s[x].alt_reason < 0) {
      /* its own stop or crash may come first (see alt_reason) */
      int own = next->type == T_STOP                                ? BW_REASON_NORMAL
                : next->type == T_CRASH || next->type == T_FAIL ? BW_REASON_CRASH
                                                                : -1;
      if (own >= 0 && own != m->s[x].reason)
        m->s[x].alt_reason = own;
    }
    if (alive) {
      int before = m->ndying;
      model_deliver(m, x, next->type);
      for (int i = before; i < m->ndying; i++)
        doomed[m->dying[i]] = true;
    }
    if (next->period == 0) {
      next->state = TM_DONE;
    } else if (next->state == TM_UNSURE && !unsure) {
      /* a tick after the death surely ends it; a tick while dying may not */
      next->state = TM_DONE;
    } else if (!alive && !unsure) {
      next->state = TM_DONE; /* the first tick after its target is gone */
    } else {
      if (unsure)
        next->state = TM_UNSURE;
      next->due += next->period;
      next->seq = m->tseq++; /* re-armed: after those set before this tick */
    }
  }
  CHECK_RC(bw_clock_advance(g_rt, ms), 0);
}

static void op_names(fz_t *f, model_t *m) {
  unsigned k = fz_below(f, 4);
  int name = (int)fz_below(f, NNAMES);
  switch (k) {
  case 0: { /* register */
    bw_pid_t pid = pick_pid(f, m);
    int x = slot_of(m, pid);
    int rc = bw_register(g_rt, names[name], pid);
    if (pid == BW_PID_NONE) {
      if (rc != BW_EINVAL)
        CHECK_RC(rc, BW_ENOPROC);
    } else if (m->names[name] >= 0) {
      /* taken, and maybe a dead pid too: either answer is right */
      if (!(rc == BW_ENOPROC && (x < 0 || !m->s[x].alive)))
        CHECK_RC(rc, BW_EEXIST);
    } else if (x < 0 || !m->s[x].alive) {
      CHECK_RC(rc, BW_ENOPROC);
    } else {
      CHECK_RC(rc, 0);
      m->names[name] = x;
    }
    break;
  }
  case 1: { /* unregister */
    int rc = bw_unregister(g_rt, names[name]);
    CHECK_RC(rc, m->names[name] >= 0 ? 0 : BW_ENOTFOUND);
    m->names[name] = -1;
    break;
  }
  case 2: { /* whereis */
    bw_pid_t got = BW_PID_NONE;
    int rc = bw_whereis(g_rt, names[name], &got);
    if (m->names[name] >= 0) {
      CHECK_RC(rc, 0);
      CHECK(got == m->s[m->names[name]].pid);
    } else {
      CHECK_RC(rc, BW_ENOTFOUND);
    }
    break;
  }
  default: { /* bad names */
    char longname[BW_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    bw_pid_t got;
    bw_pid_t pid = m->n > 0 ? m->s[0].pid : BW_PID_NONE;
    CHECK_RC(bw_register(g_rt, "", pid), BW_EINVAL);
    CHECK_RC(bw_register(g_rt, longname, pid), BW_EINVAL);
    CHECK_RC(bw_register(g_rt, NULL, pid), BW_EINVAL);
    CHECK_RC(bw_whereis(g_rt, NULL, &got), BW_EINVAL);
    CHECK_RC(bw_whereis(g_rt, names[name], NULL), BW_EINVAL);
    CHECK_RC(bw_unregister(g_rt, NULL), BW_EINVAL);
    break;
  }
  }
}

/* Dead pids stay dead: every query about them says so. */
static void op_check_dead(model_t *m) {
  for (int i = 0; i < m->n; i++) {
    slot_t *s = &m->s[i];
    uint32_t depth;
    int rc = bw_mailbox_depth(g_rt, s->pid, &depth);
    CHECK(bw_is_alive(g_rt, s->pid) == s->alive);
    if (!s->alive) {
      CHECK_RC(rc, BW_ENOPROC);
      bw_reason_t r;
      CHECK_RC(bw_wait_exit(g_rt, s->pid, 0, &r), 0);
      CHECK(r.kind == BW_REASON_NOPROC || r.kind == s->reason || r.kind == s->alt_reason);
    } else {
      CHECK_RC(rc, 0);
    }
  }
}

/* --- one input ----------------------------------------------------------------------- */

static void end_of_input(model_t *m, uint64_t live0) {
  /* the survivors' counters, then kill them all */
  sync_all(m);
  for (int i = 0; i < m->n; i++) {
    if (!m->s[i].alive)
      continue;
    CHECK_RC(bw_exit(g_rt, m->s[i].pid, BW_REASON_KILL, 0, NULL), 0);
    model_signal(m, i, BW_REASON_KILL);
  }
  await_deaths(m);
  /* every timer fires or ends: one-shots once, intervals at their first
   * tick after their target died */
  uint64_t horizon = 0, now = bw_now_ms(g_rt);
  bool pending = false;
  for (int i = 0; i < m->nt; i++) {
    tmr_t *t = &m->t[i];
    if (t->state == TM_DONE)
      continue;
    pending = true;
    uint64_t last = t->due + (t->period ? 2 * t->period : 0);
    if (last > now && last - now > horizon)
      horizon = last - now;
  }
  if (pending)
    op_advance(m, horizon > 0 ? horizon : 1);
  for (int i = 0; i < m->nt; i++)
    if (m->t[i].state != TM_DONE)
      CHECK_RC(bw_timer_cancel(g_rt, m->t[i].id), BW_ENOTFOUND);
  for (int i = 0; i < NNAMES; i++) {
    bw_pid_t got;
    CHECK_RC(bw_whereis(g_rt, names[i], &got), BW_ENOTFOUND);
  }
  /* nothing left over: actors, messages, moved payloads */
  bw_runtime_stats_t st;
  unsigned spins = 0;
  time_t t0 = time(NULL);
  for (;;) {
    CHECK(bw_runtime_stats(g_rt, &st) == 0);
    uint64_t dtors = __atomic_load_n(&g_dtor_calls, __ATOMIC_RELAXED);
    if (st.live == live0 && st.sent == st.handled + st.dead_letters && dtors == m->moved_owned)
      break;
    if (time(NULL) - t0 > 20) {
      fprintf(stderr,
              "fuzz_api: after the input: live %llu (was %llu), sent %llu, handled %llu, "
              "dead letters %llu, moved payloads freed %llu of %llu\n",
              (unsigned long long)st.live, (unsigned long long)live0,
              (unsigned long long)st.sent, (unsigned long long)st.handled,
              (unsigned long long)st.dead_letters, (unsigned long long)dtors,
              (unsigned long long)m->moved_owned);
      abort();
    }
    relax(&spins);
  }
  uint64_t sum = 0;
  for (int i = 0; i < BW_DL__COUNT; i++)
    sum += st.dead_by_reason[i];
  CHECK(sum == st.dead_letters);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt_get();
  g_inputs++;
  static model_t m;
  memset(&m, 0, sizeof m);
  for (int i = 0; i < NNAMES; i++)
    m.names[i] = -1;
  __atomic_store_n(&g_dtor_calls, 0, __ATOMIC_RELAXED);
  pthread_mutex_lock(&g_term_mx);
  g_nterms = 0;
  pthread_mutex_unlock(&g_term_mx);
  bw_runtime_stats_t st;
  CHECK(bw_runtime_stats(g_rt, &st) == 0);
  uint64_t live0 = st.live;

  fz_t f = fz_init(data, size);
  for (int ops = 0; ops < MAX_OPS && !fz_done(&f); ops++) {
    unsigned op = fz_below(&f, 24);
    g_ops++;
    if (g_verbose)
      fprintf(stderr, "op %u\n", op);
    switch (op) {
    case 0: case 1: case 2: op_spawn(&f, &m); break;
    case 3: case 4: case 5: op_send(&f, &m); break;
    case 6: op_send_named(&f, &m); break;
    case 7: op_send_move(&f, &m); break;
    case 8: case 9: op_exit(&f, &m); break;
    case 10: case 11: case 12: case 13: case 14: op_puppet(&f, &m); break;
    case 15: case 16: op_timer(&f, &m); break;
    case 17: op_cancel(&f, &m); break;
    case 18: case 19: op_advance(&m, fz_below(&f, 64)); break;
    case 20: op_names(&f, &m); break;
    case 21: op_check_dead(&m); break;
    default: sync_all(&m); break;
    }
    await_deaths(&m);
  }
  end_of_input(&m, live0);
  return 0;
}
