/*
 * bulwark demo: the tour the README points to. Copy from it.
 *
 * What it shows, in order:
 *   1. spawning actors: a pool of four "greeter"s, a "counter" registered by
 *      name, a "watcher" that monitors and a "guardian" that traps exits;
 *   2. messages: bw_call + bw_reply from main, bw_send and bw_send_named,
 *      actor-to-actor sends;
 *   3. timers on the real clock: an interval timer, a cancel, a one-shot
 *      timer that is still pending at shutdown;
 *   4. a crash contained: greeter #0 calls bw_fail, greeter #1 returns an
 *      error; the watcher gets BW_MSG_DOWN for both, the guardian (linked to
 *      #0, trapping exits) gets BW_MSG_EXIT, and everyone else still answers;
 *   5. bw_runtime_stop and the accounting: sent == handled + dead letters.
 *
 * The program checks its own results: exit code 0 when everything happened
 * as described, 1 otherwise. `--quiet` prints only the summary line.
 *
 * Only the public header is used, as in a program of your own.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <bulwark/bulwark.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- Message types: any value below BW_MSG_SYSTEM_BASE is ours ---------- */

enum {
  DEMO_GREET = 1,   /* greeter: payload = NUL-terminated name; replies if asked */
  DEMO_CORRUPT,     /* greeter: simulates a broken invariant (handler returns an error) */
  DEMO_INCR,        /* counter: payload = uint64_t amount */
  DEMO_TICK,        /* counter: from the interval timer */
  DEMO_REMINDER,    /* counter: a one-shot timer that never fires in this demo */
  DEMO_GET,         /* counter: request; reply = struct counter_view */
  DEMO_WATCH,       /* watcher: request, payload = bw_pid_t to monitor */
  DEMO_LINK,        /* guardian: request, payload = bw_pid_t to link to */
  DEMO_NEXT_EVENT,  /* watcher/guardian: request; reply DEMO_EVENT or DEMO_NO_EVENT */
  DEMO_EVENT,       /* reply type: payload = struct demo_event */
  DEMO_NO_EVENT,    /* reply type: nothing recorded yet */
};

#define CALL_TIMEOUT_MS 2000u /* generous: sanitizer builds are slow */
#define NGREETERS 4u

static bool g_quiet;
static int g_failures;
/* How many terminate callbacks ran. Only the demo's self-check uses it;
 * actors themselves share nothing and talk through messages. */
static atomic_int g_terminated;

/* Prints unless --quiet. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void say(const char *fmt, ...) {
  if (g_quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
}

/* The demo's own assertion: reports and counts, then carries on, so one
 * surprise does not hide the next. Every wait has a deadline, so carrying on
 * never hangs. */
#define EXPECT(cond)                                                           \
  ((cond) ? true                                                               \
          : (fprintf(stderr, "demo: FAILED at %s:%d: %s\n", __FILE__,         \
                     __LINE__, #cond),                                         \
             g_failures++, false))

/* For calls that must succeed: prints the code's name and message. */
#define EXPECT_OK(expr)                                                        \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    if (rc_ != 0) {                                                            \
      fprintf(stderr, "demo: FAILED at %s:%d: %s returned %s (%s)\n",         \
              __FILE__, __LINE__, #expr, bw_err_name(rc_), bw_strerror(rc_)); \
      g_failures++;                                                            \
    }                                                                          \
  } while (0)

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
  nanosleep(&ts, NULL);
}

/* === The greeter: a pool of identical workers ============================ */

struct greeter {
  unsigned id;        /* which greeter of the pool */
  uint64_t greetings; /* how many it has answered */
};

/* init runs before bw_spawn returns, so arg only has to live until then. */
static int greeter_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  struct greeter *g = state; /* zeroed by the runtime */
  g->id = *(const unsigned *)arg;
  return 0;
}

static int greeter_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct greeter *g = state;

  switch (msg->type) {
  case DEMO_GREET: {
    const char *name = msg->data;
    if (msg->len == 0 || memchr(name, '\0', msg->len) == NULL)
      bw_fail(ctx, BW_EINVAL, "greeter #%u: malformed name", g->id);
    if (name[0] == '\0')
      /* bw_fail unwinds out of this handler at once: the actor exits with
       * reason crash, this code and this text. Nothing below runs. */
      bw_fail(ctx, BW_EINVAL, "greeter #%u: cannot greet an empty name", g->id);

    g->greetings++;
    /* Actor to actor, by registered name. Fire and forget: if the counter
     * were gone the message would be a counted dead letter, not an error
     * worth crashing for. */
    uint64_t one = 1;
    (void)bw_send_named(bw_ctx_runtime(ctx), "counter", DEMO_INCR, &one, sizeof one);

    if (msg->flags & BW_MSGF_REQUEST) {
      char text[BW_MSG_INLINE_MAX];
      int n = snprintf(text, sizeof text, "Hello, %s! (greeter #%u, greeting %llu)",
                       name, g->id, (unsigned long long)g->greetings);
      if (n < 0 || (size_t)n >= sizeof text)
        n = (int)sizeof text - 1; /* truncated; still NUL-terminated */
      /* A failed reply (the caller gave up) is a dead letter, not our crash. */
      (void)bw_reply(ctx, msg, 0, DEMO_GREET, text, (size_t)n + 1);
    }
    return BW_CONTINUE;
  }
  case DEMO_CORRUPT:
    /* The other way to crash: return a negative code. The actor exits with
     * reason crash and this code; messages still queued for it become dead
     * letters (reason "exited"). */
    return BW_ESTATE;
  default:
    return BW_CONTINUE; /* ignore what we do not know */
  }
}

/* Every behaviour of the demo uses this terminate. It runs once per actor,
 * after a crash too: the place to release what init acquired. */
static void note_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  (void)state;
  (void)reason;
  atomic_fetch_add(&g_terminated, 1);
}

static const bw_behaviour_t greeter_behaviour = {
    .name = "greeter",
    .state_size = sizeof(struct greeter),
    .init = greeter_init,
    .handle = greeter_handle,
    .terminate = note_terminate,
};

/* === The counter: state changed only by messages ========================= */

struct counter_view {
  uint64_t count; /* sum of DEMO_INCR amounts */
  uint64_t ticks; /* DEMO_TICKs from the interval timer */
};

static int counter_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct counter_view *c = state;

  switch (msg->type) {
  case DEMO_INCR: {
    uint64_t amount;
    if (msg->len != sizeof amount)
      return BW_EINVAL; /* a malformed message is a bug: crash loudly */
    memcpy(&amount, msg->data, sizeof amount); /* payloads may be unaligned */
    c->count += amount;
    return BW_CONTINUE;
  }
  case DEMO_TICK:
    c->ticks++;
    return BW_CONTINUE;
  case DEMO_GET:
    (void)bw_reply(ctx, msg, 0, DEMO_GET, c, sizeof *c);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t counter_behaviour = {
    .name = "counter",
    .state_size = sizeof(struct counter_view),
    .handle = counter_handle, /* init is optional: the state starts zeroed */
    .terminate = note_terminate,
};

/* === Watcher and guardian: they record what they observe ================= */

/* What they hand back to main, one per DEMO_NEXT_EVENT call. */
struct demo_event {
  uint32_t kind;      /* BW_MSG_DOWN or BW_MSG_EXIT */
  bw_pid_t who;       /* the actor that went down */
  bw_reason_t reason; /* why: kind, code, text */
};

#define EVENT_MAX 8u

struct event_log {
  struct demo_event ev[EVENT_MAX];
  unsigned head, count;
};

/* Copies a DOWN or EXIT message into the log; its data is only valid during
 * this handler call. */
static void event_record(struct event_log *log, const bw_msg_t *msg) {
  if (log->count == EVENT_MAX || msg->len < sizeof(bw_reason_t))
    return;
  struct demo_event *e = &log->ev[(log->head + log->count) % EVENT_MAX];
  e->kind = msg->type;
  e->who = msg->from;
  memcpy(&e->reason, msg->data, sizeof e->reason);
  log->count++;
}

/* Answers DEMO_NEXT_EVENT with the oldest recorded event, or DEMO_NO_EVENT.
 * A reply cannot wait for a future event (the request is only valid in this
 * call), so main polls. */
static void event_reply_next(bw_ctx_t *ctx, struct event_log *log, const bw_msg_t *req) {
  if (log->count == 0) {
    (void)bw_reply(ctx, req, 0, DEMO_NO_EVENT, NULL, 0);
    return;
  }
  (void)bw_reply(ctx, req, 0, DEMO_EVENT, &log->ev[log->head], sizeof log->ev[0]);
  log->head = (log->head + 1) % EVENT_MAX;
  log->count--;
}

/* Reads a pid payload. */
static bool msg_pid(const bw_msg_t *msg, bw_pid_t *out) {
  if (msg->len != sizeof *out)
    return false;
  memcpy(out, msg->data, sizeof *out);
  return true;
}

/* The watcher monitors: it learns that an actor died, and why. */
static int watcher_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct event_log *log = state;
  bw_pid_t pid;

  switch (msg->type) {
  case DEMO_WATCH: {
    uint64_t ref = 0;
    int rc = msg_pid(msg, &pid) ? bw_monitor(ctx, pid, &ref) : BW_EINVAL;
    (void)bw_reply(ctx, msg, rc, DEMO_WATCH, &ref, sizeof ref);
    return BW_CONTINUE;
  }
  case BW_MSG_DOWN: /* from = the monitored pid, ref = the monitor ref */
    event_record(log, msg);
    return BW_CONTINUE;
  case DEMO_NEXT_EVENT:
    event_reply_next(ctx, log, msg);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t watcher_behaviour = {
    .name = "watcher",
    .state_size = sizeof(struct event_log),
    .handle = watcher_handle,
    .terminate = note_terminate,
};

/* The guardian links and traps exits: a linked actor's crash arrives as a
 * BW_MSG_EXIT message instead of taking the guardian down with it. This is
 * what a supervisor does. */
static int guardian_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct event_log *log = state;
  bw_pid_t pid;

  switch (msg->type) {
  case DEMO_LINK: {
    int rc = msg_pid(msg, &pid) ? bw_link(ctx, pid) : BW_EINVAL;
    (void)bw_reply(ctx, msg, rc, DEMO_LINK, NULL, 0);
    return BW_CONTINUE;
  }
  case BW_MSG_EXIT: { /* from = the linked actor, data = its reason */
    bw_reason_t reason;
    if (msg->len >= sizeof reason) {
      memcpy(&reason, msg->data, sizeof reason);
      /* Trapping is a promise to handle exits, including "please stop". */
      if (reason.kind == BW_REASON_SHUTDOWN)
        return BW_STOP;
    }
    event_record(log, msg);
    return BW_CONTINUE;
  }
  case DEMO_NEXT_EVENT:
    event_reply_next(ctx, log, msg);
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t guardian_behaviour = {
    .name = "guardian",
    .state_size = sizeof(struct event_log),
    .handle = guardian_handle,
    .terminate = note_terminate, /* same bookkeeping */
};

/* === Helpers for main ===================================================== */

/* bw_call with a NUL-terminated string payload; prints and checks the reply. */
static int greet(bw_runtime_t *rt, bw_pid_t to, const char *name, bw_reply_t *out) {
  return bw_call(rt, to, DEMO_GREET, name, strlen(name) + 1, CALL_TIMEOUT_MS, out);
}

static bool greet_ok(bw_runtime_t *rt, bw_pid_t to, const char *name) {
  bw_reply_t r;
  int rc = greet(rt, to, name, &r);
  if (!EXPECT(rc == 0) || !EXPECT(r.type == DEMO_GREET && r.len > 0)) {
    fprintf(stderr, "demo:   greeting %s: %s\n", name, bw_err_name(rc));
    return false;
  }
  r.data[r.len - 1] = '\0';
  say("  %-6s -> \"%s\"\n", name, (const char *)r.data);
  return true;
}

static bool counter_get(bw_runtime_t *rt, bw_pid_t counter, struct counter_view *out) {
  bw_reply_t r;
  int rc = bw_call(rt, counter, DEMO_GET, NULL, 0, CALL_TIMEOUT_MS, &r);
  if (!EXPECT(rc == 0) || !EXPECT(r.type == DEMO_GET && r.len == sizeof *out))
    return false;
  memcpy(out, r.data, sizeof *out);
  return true;
}

/* Polls an event log (watcher or guardian) until an event arrives or
 * deadline_ms passes. Main may sleep: it is not a scheduler thread. */
static bool next_event(bw_runtime_t *rt, bw_pid_t from, unsigned deadline_ms,
                       struct demo_event *out) {
  uint64_t until = bw_now_ms(rt) + deadline_ms;
  do {
    bw_reply_t r;
    int rc = bw_call(rt, from, DEMO_NEXT_EVENT, NULL, 0, CALL_TIMEOUT_MS, &r);
    if (!EXPECT(rc == 0))
      return false;
    if (r.type == DEMO_EVENT && r.len == sizeof *out) {
      memcpy(out, r.data, sizeof *out);
      return true;
    }
    sleep_ms(2);
  } while (bw_now_ms(rt) < until);
  return false;
}

/* Sends a pid as the payload of a request and returns the replier's status. */
static int call_with_pid(bw_runtime_t *rt, bw_pid_t to, uint32_t type, bw_pid_t pid) {
  bw_reply_t r;
  return bw_call(rt, to, type, &pid, sizeof pid, CALL_TIMEOUT_MS, &r);
}

static int greeter_index(const bw_pid_t *pool, bw_pid_t pid) {
  for (unsigned i = 0; i < NGREETERS; i++)
    if (pool[i] == pid)
      return (int)i;
  return -1;
}

static void print_event(const char *who, const struct demo_event *e, const bw_pid_t *pool) {
  say("  %s: %s from greeter #%d: reason %s, code %s (%d), \"%s\"\n", who,
      e->kind == BW_MSG_DOWN ? "DOWN" : "EXIT", greeter_index(pool, e->who),
      bw_reason_kind_name(e->reason.kind), bw_err_name(e->reason.code),
      (int)e->reason.code, e->reason.text);
}

/* === main ================================================================= */

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
      g_quiet = true;
    } else {
      fprintf(stderr, "usage: %s [--quiet]\n", argv[0]);
      return 2;
    }
  }

  /* --- 1. A runtime and its actors ---------------------------------------- */
  bw_runtime_t *rt = NULL;
  int rc = bw_runtime_create(NULL, &rt); /* NULL: one worker per CPU, real clock */
  if (rc != 0) {
    fprintf(stderr, "demo: bw_runtime_create: %s (%s)\n", bw_err_name(rc), bw_strerror(rc));
    return 1;
  }
  say("bulwark %d.%d.%d demo: %u scheduler threads\n\n", BW_VERSION_MAJOR,
      BW_VERSION_MINOR, BW_VERSION_PATCH, bw_runtime_workers(rt));

  say("== 1. spawn actors\n");
  bw_pid_t pool[NGREETERS] = {0}, counter = 0, watcher = 0, guardian = 0;
  unsigned ids[NGREETERS];
  for (unsigned i = 0; i < NGREETERS; i++) {
    ids[i] = i;
    EXPECT_OK(bw_spawn(rt, &greeter_behaviour, &ids[i], NULL, &pool[i]));
  }

  bw_spawn_opts_t opts;
  bw_spawn_opts_init(&opts);
  opts.name = "counter"; /* registered as part of the spawn */
  EXPECT_OK(bw_spawn(rt, &counter_behaviour, NULL, &opts, &counter));

  EXPECT_OK(bw_spawn(rt, &watcher_behaviour, NULL, NULL, &watcher));
  EXPECT_OK(bw_register(rt, "watcher", watcher)); /* or register afterwards */

  bw_spawn_opts_init(&opts);
  opts.trap_exit = true; /* exits of linked actors arrive as BW_MSG_EXIT */
  EXPECT_OK(bw_spawn(rt, &guardian_behaviour, NULL, &opts, &guardian));

  bw_pid_t found = 0;
  EXPECT_OK(bw_whereis(rt, "counter", &found));
  EXPECT(found == counter);
  say("  %u greeters, \"counter\" (found again with bw_whereis), \"watcher\", guardian\n",
      NGREETERS);
  if (g_failures) { /* nothing below makes sense without the actors */
    bw_runtime_destroy(rt);
    fprintf(stderr, "demo: FAILED: could not spawn the actors\n");
    return 1;
  }

  /* --- 2. Messages -------------------------------------------------------- */
  say("\n== 2. messages: bw_call/bw_reply, bw_send, bw_send_named\n");
  static const char *const names[] = {"alice", "bob", "carol", "dave",
                                      "erin", "frank", "grace", "heidi"};
  const unsigned nnames = sizeof names / sizeof names[0];
  for (unsigned i = 0; i < nnames; i++) /* round robin over the pool */
    greet_ok(rt, pool[i % NGREETERS], names[i]);

  /* Fire-and-forget sends from main: by pid, and by name. Messages from one
   * sender to one receiver arrive in order, so the bw_call below sees them. */
  uint64_t amount = 10;
  EXPECT_OK(bw_send(rt, counter, DEMO_INCR, &amount, sizeof amount));
  amount = 5;
  EXPECT_OK(bw_send_named(rt, "counter", DEMO_INCR, &amount, sizeof amount));

  struct counter_view view = {0};
  if (counter_get(rt, counter, &view)) {
    say("  counter = %llu (%u greetings sent it 1 each, main sent 10 + 5)\n",
        (unsigned long long)view.count, nnames);
    EXPECT(view.count == nnames + 15u);
  }

  /* --- 3. Timers ---------------------------------------------------------- */
  say("\n== 3. timers (real clock)\n");
  bw_timer_t tick = 0, reminder = 0;
  EXPECT_OK(bw_send_interval(rt, counter, 10, DEMO_TICK, NULL, 0, &tick));
  uint64_t t0 = bw_now_ms(rt);
  view.ticks = 0;
  while (view.ticks < 5 && bw_now_ms(rt) - t0 < 3000 && counter_get(rt, counter, &view))
    sleep_ms(5);
  EXPECT_OK(bw_timer_cancel(rt, tick));
  say("  a 10 ms interval timer ticked %llu times in %llu ms; cancelled\n",
      (unsigned long long)view.ticks, (unsigned long long)(bw_now_ms(rt) - t0));
  EXPECT(view.ticks >= 5);
  EXPECT(bw_timer_cancel(rt, tick) == BW_ENOTFOUND); /* already cancelled */

  /* Still pending at bw_runtime_stop: its message becomes a dead letter with
   * reason "shutdown", counted like any other. */
  EXPECT_OK(bw_send_after(rt, counter, 60000, DEMO_REMINDER, NULL, 0, &reminder));
  say("  a one-shot timer is set 60 s ahead: still pending at shutdown\n");

  /* --- 4. Crashes are contained ------------------------------------------ */
  say("\n== 4. crashes are contained\n");
  uint64_t ref0 = 0, ref1 = 0;
  bw_reply_t r;
  EXPECT_OK(bw_call(rt, watcher, DEMO_WATCH, &pool[0], sizeof pool[0], CALL_TIMEOUT_MS, &r));
  if (r.len == sizeof ref0)
    memcpy(&ref0, r.data, sizeof ref0);
  EXPECT_OK(bw_call(rt, watcher, DEMO_WATCH, &pool[1], sizeof pool[1], CALL_TIMEOUT_MS, &r));
  if (r.len == sizeof ref1)
    memcpy(&ref1, r.data, sizeof ref1);
  EXPECT(ref0 != 0 && ref1 != 0 && ref0 != ref1);
  EXPECT_OK(call_with_pid(rt, guardian, DEMO_LINK, pool[0]));
  say("  watcher monitors greeters #0 and #1; guardian (trap_exit) is linked to #0\n");

  /* Crash 1: bw_fail inside the handler. The caller is not left hanging: the
   * call fails with BW_ENOPROC as soon as the target is gone. */
  rc = greet(rt, pool[0], "", &r);
  say("  greeter #0 asked to greet \"\" -> bw_fail; our bw_call returned %s\n",
      bw_err_name(rc));
  EXPECT(rc == BW_ENOPROC);

  /* Crash 2: the handler returns an error. The three greetings queued behind
   * it are never handled: they become dead letters ("exited", or "noproc" if
   * the actor is already gone when they are sent). */
  EXPECT_OK(bw_send(rt, pool[1], DEMO_CORRUPT, NULL, 0));
  for (unsigned i = 0; i < 3; i++) {
    rc = bw_send(rt, pool[1], DEMO_GREET, "late", 5);
    EXPECT(rc == 0 || rc == BW_ENOPROC);
  }
  say("  greeter #1 sent DEMO_CORRUPT (+3 greetings behind it) -> handler returns BW_ESTATE\n");

  /* The watcher gets one DOWN per crash, in whatever order they happened. */
  bool seen_down[2] = {false, false};
  for (unsigned n = 0; n < 2; n++) {
    struct demo_event e;
    if (!EXPECT(next_event(rt, watcher, 3000, &e)))
      break;
    print_event("watcher ", &e, pool);
    int idx = greeter_index(pool, e.who);
    EXPECT(e.kind == BW_MSG_DOWN && (idx == 0 || idx == 1));
    EXPECT(e.reason.kind == BW_REASON_CRASH);
    if (idx == 0) {
      seen_down[0] = true;
      EXPECT(e.reason.code == BW_EINVAL);
      EXPECT(strstr(e.reason.text, "empty name") != NULL);
    } else if (idx == 1) {
      seen_down[1] = true;
      EXPECT(e.reason.code == BW_ESTATE);
    }
  }
  EXPECT(seen_down[0] && seen_down[1]);

  /* The guardian trapped the exit of its linked greeter and lives on. */
  struct demo_event e;
  if (EXPECT(next_event(rt, guardian, 3000, &e))) {
    print_event("guardian", &e, pool);
    EXPECT(e.kind == BW_MSG_EXIT && e.who == pool[0]);
    EXPECT(e.reason.kind == BW_REASON_CRASH && e.reason.code == BW_EINVAL);
  }

  /* Everyone else still answers. */
  say("  after the crashes:\n");
  EXPECT(!bw_is_alive(rt, pool[0]) && !bw_is_alive(rt, pool[1]));
  EXPECT(bw_is_alive(rt, pool[2]) && bw_is_alive(rt, pool[3]));
  EXPECT(bw_is_alive(rt, guardian) && bw_is_alive(rt, watcher));
  greet_ok(rt, pool[2], "ivan");
  greet_ok(rt, pool[3], "judy");
  if (counter_get(rt, counter, &view))
    say("  counter = %llu, still counting\n", (unsigned long long)view.count);
  EXPECT(next_event(rt, guardian, 0, &e) == false); /* nothing else happened */

  /* A dead pid stays dead: a send to it is a counted dead letter (noproc),
   * never a delivery to some new actor in the same slot. */
  rc = bw_send(rt, pool[0], DEMO_GREET, "ghost", 6);
  say("  bw_send to dead greeter #0 -> %s (%s)\n", bw_err_name(rc), bw_strerror(rc));
  EXPECT(rc == BW_ENOPROC);

  bw_runtime_stats_t st;
  EXPECT_OK(bw_runtime_stats(rt, &st));
  say("  live actors: %llu, crashed: %llu\n", (unsigned long long)st.live,
      (unsigned long long)st.crashed);

  /* --- 5. Stop and account ----------------------------------------------- */
  say("\n== 5. bw_runtime_stop and the accounting\n");
  EXPECT_OK(bw_runtime_stop(rt)); /* terminate runs for every live actor */
  EXPECT_OK(bw_runtime_stats(rt, &st)); /* still answers after stop */

  say("  sent %llu, handled %llu, dead letters %llu (", (unsigned long long)st.sent,
      (unsigned long long)st.handled, (unsigned long long)st.dead_letters);
  for (int i = 0; i < BW_DL__COUNT; i++)
    say("%s%s %llu", i ? ", " : "", bw_dead_reason_name(i),
        (unsigned long long)st.dead_by_reason[i]);
  say(")\n");
  bool balanced = st.sent == st.handled + st.dead_letters;
  say("  sent == handled + dead_letters: %llu == %llu + %llu: %s\n",
      (unsigned long long)st.sent, (unsigned long long)st.handled,
      (unsigned long long)st.dead_letters, balanced ? "yes" : "NO");
  EXPECT(balanced);
  uint64_t by_reason = 0;
  for (int i = 0; i < BW_DL__COUNT; i++)
    by_reason += st.dead_by_reason[i];
  EXPECT(by_reason == st.dead_letters);
  /* At least: 3 greetings behind the crash, the ghost, the pending timer. */
  EXPECT(st.dead_by_reason[BW_DL_EXITED] + st.dead_by_reason[BW_DL_NOPROC] >= 4);
  EXPECT(st.dead_by_reason[BW_DL_SHUTDOWN] >= 1);

  int terminated = atomic_load(&g_terminated);
  say("  spawned %llu, exited %llu, crashed %llu, live %llu; terminate ran %d times\n",
      (unsigned long long)st.spawned, (unsigned long long)st.exited,
      (unsigned long long)st.crashed, (unsigned long long)st.live, terminated);
  EXPECT(st.spawned == NGREETERS + 3u && st.exited == st.spawned && st.live == 0);
  EXPECT(st.crashed == 2);
  EXPECT(terminated == (int)(NGREETERS + 3u)); /* crashed ones included */
  EXPECT(bw_send(rt, counter, DEMO_INCR, &amount, sizeof amount) == BW_ESHUTDOWN);

  bw_runtime_destroy(rt);

  if (g_failures) {
    fprintf(stderr, "demo: FAILED: %d unexpected result(s)\n", g_failures);
    return 1;
  }
  printf("%sdemo: ok: %llu actors, %llu crashes contained, sent %llu = handled %llu"
         " + dead letters %llu\n",
         g_quiet ? "" : "\n", (unsigned long long)st.spawned,
         (unsigned long long)st.crashed, (unsigned long long)st.sent,
         (unsigned long long)st.handled, (unsigned long long)st.dead_letters);
  return 0;
}
