/*
 * bulwark: messages and the send path.
 *
 * A send: validate, take a node from this thread's pool cache, copy the
 * payload, pin the receiver's slot, push into its mailbox (schedule it if it
 * was idle), unpin. No lock and no malloc in steady state.
 */
#include <string.h>

#include "runtime/internal.h"
#include "runtime/mailbox.h"

__thread bw__tls bw__tl;

bw__cache *bw__my_cache(bw__runtime *rt) {
  if (bw__tl.th != NULL && bw__tl.th->rt == rt)
    return bw__tl.th->cache;
  if (bw__tl.rt_id == rt->id && bw__tl.ext_cache != NULL)
    return bw__tl.ext_cache;
  /* A thread the runtime does not own, first use: give it a cache of its
   * own, kept until the runtime is destroyed. */
  bw__cache *c = bw__cache_acquire(rt);
  if (c == NULL)
    return NULL;
  bw__tl.rt_id = rt->id;
  bw__tl.ext_cache = c;
  return c;
}

bw__counters *bw__my_counters(bw__runtime *rt) {
  if (bw__tl.th != NULL && bw__tl.th->rt == rt)
    return bw__tl.th->ctr;
  return &rt->ext_ctr;
}

bw_pid_t bw__current_pid(const bw__runtime *rt) {
  bw__actor *a = bw__tl.cur;
  return (a != NULL && a->rt == rt) ? a->pid : BW_PID_NONE;
}

bool bw__rt_running(const bw__runtime *rt) {
  /* relaxed: a racy hint; stop re-checks under its own ordering */
  return bw__ld32_rlx(&rt->state) != BW__RT_STOPPED;
}

/* Refs carry the node number in their top byte, as pids do, so a monitor
 * ref made on one node never collides with another node's in the target's
 * table. */
uint64_t bw__new_ref(bw__runtime *rt) {
  return ((uint64_t)rt->node_id << 56) | ((bw__faa64(&rt->next_ref, 1) + 1) & ((1ull << 56) - 1));
}

bw__msg *bw__msg_alloc(bw__runtime *rt, size_t payload) {
  int cls = bw__pool_class(BW__MSG_HDR + payload);
  bw__cache *c = bw__my_cache(rt);
  if (cls < 0 || c == NULL)
    return NULL;
  bw__msg *m = bw__pool_alloc(c, cls);
  if (m == NULL)
    return NULL;
  m->to = BW_PID_NONE;
  m->kind = BW__K_USER;
  m->cls = (uint8_t)cls;
  memset(&m->pub, 0, sizeof(m->pub));
  return m;
}

bw__msg *bw__msg_new(bw__runtime *rt, bw_pid_t to, int kind, uint32_t type,
                     const void *data, size_t len) {
  bw__msg *m = bw__msg_alloc(rt, len);
  if (m == NULL)
    return NULL;
  m->to = to;
  m->kind = (uint16_t)kind;
  m->pub.type = type;
  m->pub.len = (uint32_t)len;
  m->pub.from = bw__current_pid(rt);
  if (len > 0) {
    memcpy(m->inl, data, len);
    m->pub.data = m->inl;
  }
  return m;
}

void bw__msg_release_node(bw__runtime *rt, bw__msg *m) {
  bw__pool_free(bw__my_cache(rt), m);
}

void bw__msg_free(bw__runtime *rt, bw__msg *m) {
  if (__builtin_expect(m->kind == BW__K_IO, 0)) {
    bw__io_msg_back(rt, m); /* a watch's preallocated node goes home */
    return;
  }
  if ((m->pub.flags & BW_MSGF_MOVED) && m->pub.data != NULL) {
    bw__dtor_fn f = bw__msg_dtor(m);
    if (f != NULL)
      f((void *)m->pub.data);
  }
  bw__msg_release_node(rt, m);
}

/*
 * The pin a sender needs so the receiver is not freed under its push costs
 * two atomic RMWs on the receiver's slot word, which every sender to that
 * receiver shares: under fan-in they bounce that line between cores on
 * every message. An actor on a worker thread therefore keeps its last pin
 * until its turn ends (bw__pin_drop), and re-validates it per send with a
 * plain load of the generation. A turn on a worker is bounded (one batch,
 * never blocking), so the receiver's exit, which waits for pins, waits at
 * most that long; and a thread that invalidates a pid it holds drops its
 * own pin first (bw__pid_invalidate), so it cannot wait for itself.
 * Dedicated-thread actors and outside threads may block between sends, so
 * they pin per message. A send to oneself needs no pin: the running actor
 * cannot be freed while its own turn runs on this thread.
 */
static bw__actor *pin_for_send(bw__runtime *rt, bw_pid_t to, bw__slot **s, bool *cached) {
  bw__actor *cur = bw__tl.cur;
  *cached = false;
  if (!bw__tl.pin_keep || cur == NULL || cur->rt != rt)
    return bw__pid_pin(rt, to, s);
  *cached = true;
  if (to == cur->pid) {
    *s = NULL;
    return cur;
  }
  if (bw__tl.pin_slot != NULL && bw__tl.pin_pid == to) {
    /* relaxed: we hold a pin, so the actor stays allocated; the generation
     * tells whether it has begun to exit (then: the slow path, noproc) */
    if ((uint32_t)(bw__ld64_rlx(&bw__tl.pin_slot->word) >> 32) == BW__PID_GEN(to)) {
      *s = bw__tl.pin_slot;
      return bw__tl.pin_actor;
    }
  }
  bw__pin_release();
  bw__actor *a = bw__pid_pin(rt, to, s);
  if (a != NULL) {
    bw__tl.pin_pid = to;
    bw__tl.pin_slot = *s;
    bw__tl.pin_actor = a;
  }
  return a;
}

void bw__pin_release(void) {
  if (bw__tl.pin_slot != NULL) {
    if (bw__tl.pin_pushed != 0) {
      /* the batched backlog count, while the pin still holds the actor */
      bw__faa32(&bw__tl.pin_actor->mb_pushed, bw__tl.pin_pushed);
      bw__tl.pin_pushed = 0;
    }
    bw__pid_unpin(bw__tl.pin_slot);
    bw__tl.pin_slot = NULL;
    bw__tl.pin_actor = NULL;
    bw__tl.pin_pid = BW_PID_NONE;
  }
}

void bw__pin_drop(void) {
  bw__tl.pin_keep = false;
  bw__pin_release();
}

/* A pid of another node goes to the node layer. Without one (a plain
 * runtime), or for node 0 on a node, it is a pid this process never made:
 * noproc, as for any stale pid. */
static int deliver_remote(bw__runtime *rt, bw__msg *m) {
  /* acquire: the layer's state is initialised before its ops are seen */
  const bw__remote_ops *ops = BW__LD_ACQ(&rt->remote_ops);
  if (ops != NULL && BW__PID_NODE(m->to) != 0)
    return ops->deliver(rt, m, rt->remote_ud);
  if (m->kind == BW__K_USER) {
    bw__counters *c = bw__my_counters(rt);
    bw__ctr_add(rt, c, &c->sent, 1);
    bw__dead_letter(rt, m, (m->pub.flags & BW_MSGF_REPLY) ? BW_DL_LATE_REPLY : BW_DL_NOPROC);
  } else {
    bw__msg_free(rt, m);
  }
  return BW_ENOPROC;
}

bool bw__move_ok(bw__runtime *rt, bw_pid_t pid, uint32_t type) {
  if (rt->node_id == 0 || bw__pid_is_local(rt, pid) || BW__PID_NODE(pid) == 0)
    return true;
  /* acquire: see deliver_remote */
  const bw__remote_ops *ops = BW__LD_ACQ(&rt->remote_ops);
  return ops != NULL && ops->can_move != NULL && ops->can_move(rt, type, rt->remote_ud);
}

int bw__remote_spawn(bw_ctx_t *ctx, const bw_remote_child_t *rc, uint64_t *ref) {
  bw__runtime *rt = bw_ctx_runtime(ctx);
  if (rt == NULL)
    return BW_ENOTACTOR;
  /* acquire: see deliver_remote */
  const bw__remote_ops *ops = BW__LD_ACQ(&rt->remote_ops);
  if (ops == NULL || ops->spawn == NULL)
    return BW_ENOTSUP;
  return ops->spawn(ctx, rc, ref, rt->remote_ud);
}

int bw__remote_install(bw__runtime *rt, const bw__remote_ops *ops, void *ud) {
  if (rt->node_id == 0)
    return BW_EINVAL;
  /* one layer per runtime, ever: the first CAS on remote_ud claims it */
  if (!BW__CAS(&rt->remote_ud, NULL, ud))
    return BW_EALREADY;
  /* release: remote_ud and the layer's state are visible before the ops */
  BW__ST_REL(&rt->remote_ops, ops);
  return 0;
}

/*
 * Who back-pressure may mute (RUNTIME.md, "Back-pressure"): only an actor
 * that is not never-muted, for a plain user message. Signals (exits, DOWN,
 * links, monitors), replies, timer messages and the runtime's own types
 * never mute their sender: muting exists to bound a fan-in of work, and
 * these are how the actors that keep the system alive (supervisors,
 * monitors, repliers) do their job. Read before the push, after which m
 * belongs to the receiver.
 */
static bool may_mute(const bw__actor *self, const bw__msg *m) {
  return self != NULL && !(self->cflags & BW__CF_NEVER_MUTED) && m->kind == BW__K_USER &&
         !(m->pub.flags & (BW_MSGF_REPLY | BW__MF_TIMER)) && m->pub.type < BW_MSG_SYSTEM_BASE;
}

int bw__deliver(bw__runtime *rt, bw__msg *m, bool keep_on_reject) {
  bw__slot *s;
  bool cached;
  bw__tl.nsends++;
  if (__builtin_expect(!bw__pid_is_local(rt, m->to), 0)) {
    /* a node's gate mutes the same senders as an overloaded actor does:
     * undo a gate wait this send caused if it may not mute */
    bw__gate *g0 = bw__tl.mute_gate;
    bool mutes = may_mute(bw__tl.cur, m);
    int rc = deliver_remote(rt, m);
    if (!mutes)
      bw__tl.mute_gate = g0;
    return rc;
  }
  bw__actor *a = pin_for_send(rt, m->to, &s, &cached);
  bool user = m->kind == BW__K_USER;
  if (a == NULL) {
    if (user) {
      bw__counters *c = bw__my_counters(rt);
      bw__ctr_add(rt, c, &c->sent, 1);
      bw__dead_letter(rt, m, (m->pub.flags & BW_MSGF_REPLY) ? BW_DL_LATE_REPLY : BW_DL_NOPROC);
    } else {
      bw__msg_free(rt, m);
    }
    return BW_ENOPROC;
  }
  if (a->mb_cap != 0 && bw__msg_counts(m)) {
    /* acq_rel: the count is the only thing bounding the mailbox */
    uint32_t n = bw__faa32(&a->mb_count, 1);
    if (n >= a->mb_cap) {
      bw__faa32(&a->mb_count, (uint32_t)-1);
      bool drop = (a->cflags & BW__CF_DROP) != 0;
      if (!cached)
        bw__pid_unpin(s);
      if (drop) {
        bw__counters *c = bw__my_counters(rt);
        bw__ctr_add(rt, c, &c->sent, 1);
        bw__dead_letter(rt, m, BW_DL_FULL);
        return 0;
      }
      bw__faa64(&rt->rejected, 1);
      if (!keep_on_reject)
        bw__msg_free(rt, m);
      return BW_EFULL;
    }
  }
  if (user) {
    bw__counters *c = bw__my_counters(rt);
    bw__ctr_add(rt, c, &c->sent, 1);
  }
  /* the backlog count for back-pressure and bw_mailbox_depth (a heuristic):
   * a stream of sends under a kept pin adds in batches (bw__pin_release
   * adds the rest), saving a locked add on the receiver's busiest line per
   * message; others add at once */
  if (cached && s != NULL) {
    if (++bw__tl.pin_pushed >= BW__PUSHED_BATCH) {
      bw__faa32(&a->mb_pushed, bw__tl.pin_pushed);
      bw__tl.pin_pushed = 0;
    }
  } else {
    bw__faa32(&a->mb_pushed, 1);
  }
  bw__actor *self = bw__tl.cur;
  bool mutes = self != a && may_mute(self, m);
  int kind = m->kind; /* m is the receiver's after the push */
  if (self == a) {
    /* the backlog it makes for itself does not make it overloaded
     * (turn.c): counted apart, by the owner alone, so no atomic */
    m->pub.flags |= BW__MF_SELF;
    a->self_queued++;
  }
  if (bw__mpsc_push(&a->mb, &m->q))
    bw__schedule(rt, a);
  /* back-pressure: an actor sending to an overloaded actor is muted at the
   * end of its turn (see bw__actor_run); relaxed: a hint */
  if (mutes && bw__tl.mute_on == BW_PID_NONE && (bw__ld32_rlx(&a->trap) & BW__SIG_OVERLOADED))
    bw__tl.mute_on = a->pid;
  else if (kind == BW__K_WAKE)
    bw__wake_muted(rt, a); /* an exit for a (link.c): a muted actor must see it */
  if (!cached)
    bw__pid_unpin(s);
  return 0;
}

static int check_send(const bw_runtime_t *rt, uint32_t type, const void *data, size_t len) {
  if (rt == NULL || type >= BW_MSG_SYSTEM_BASE || (len > 0 && data == NULL))
    return BW_EINVAL;
  if (!bw__rt_running(rt))
    return BW_ESHUTDOWN;
  return 0;
}

int bw_send(bw_runtime_t *rt, bw_pid_t to, uint32_t type, const void *data, size_t len) {
  int rc = check_send(rt, type, data, len);
  if (rc != 0)
    return rc;
  if (len > BW_MSG_INLINE_MAX)
    return BW_ETOOBIG;
  bw__msg *m = bw__msg_new(rt, to, BW__K_USER, type, data, len);
  if (m == NULL)
    return BW_ENOMEM;
  rc = bw__deliver(rt, m, true);
  if (rc == BW_EFULL)
    bw__msg_release_node(rt, m);
  return rc;
}

int bw_send_move(bw_runtime_t *rt, bw_pid_t to, uint32_t type, void *ptr, size_t len,
                 void (*dtor)(void *)) {
  int rc = check_send(rt, type, ptr, len);
  if (rc != 0)
    return rc;
  if (len > UINT32_MAX)
    return BW_ETOOBIG;
  /* a pointer means nothing in another process; the caller keeps it */
  if (!bw__move_ok(rt, to, type))
    return BW_EREMOTE;
  bw__msg *m = bw__msg_alloc(rt, sizeof(bw__dtor_fn));
  if (m == NULL)
    return BW_ENOMEM;
  m->to = to;
  m->pub.type = type;
  m->pub.len = (uint32_t)len;
  m->pub.from = bw__current_pid(rt);
  m->pub.data = ptr;
  m->pub.flags = BW_MSGF_MOVED;
  bw__msg_set_dtor(m, dtor);
  rc = bw__deliver(rt, m, true);
  if (rc == BW_EFULL)
    bw__msg_release_node(rt, m); /* the caller keeps ptr */
  return rc;
}

void *bw_msg_take(bw_ctx_t *ctx, const bw_msg_t *msg) {
  bw__actor *a = (bw__actor *)ctx;
  if (a == NULL || msg == NULL || a->cur_msg == NULL || &a->cur_msg->pub != msg ||
      !(msg->flags & BW_MSGF_MOVED))
    return NULL;
  void *p = (void *)msg->data;
  bw__msg_set_dtor(a->cur_msg, NULL);
  return p;
}

int bw__send_sys(bw__runtime *rt, bw_pid_t to, bw_pid_t from, int kind, uint64_t ref,
                 const bw_reason_t *reason) {
  bw__msg *m = bw__msg_new(rt, to, kind, 0, reason, reason ? sizeof(*reason) : 0);
  if (m == NULL)
    return BW_ENOMEM;
  m->pub.from = from;
  m->pub.ref = ref;
  return bw__deliver(rt, m, false);
}

int bw__reply_status(bw__runtime *rt, bw_pid_t to, bw_pid_t from, uint64_t ref, int status) {
  bw__msg *m = bw__msg_new(rt, to, BW__K_USER, 0, NULL, 0);
  if (m == NULL)
    return BW_ENOMEM;
  m->pub.from = from;
  m->pub.ref = ref;
  m->pub.status = status;
  m->pub.flags = BW_MSGF_REPLY;
  return bw__deliver(rt, m, false);
}

_Static_assert(sizeof(bw__msg) == 56, "message header: 56 bytes, so 8-byte payloads fit one line");
