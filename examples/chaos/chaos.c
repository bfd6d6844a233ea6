/*
 * chaos: supervision keeps a service up while its workers crash and hang.
 *
 *   root (one_for_one, backoff)
 *   └── service (one_for_one, at most 20 restarts per second)
 *       ├── replica-0   each: crashes on 2 % of requests, hangs on 1 %;
 *       ├── replica-1   watched by the runtime's watchdog (hang_limit_ms),
 *       └── replica-2   a hang counts as a crash (hang_is_crash)
 *
 * What it shows, in three phases:
 *   1. chaos: a client (main) calls the replicas in turn. Crashed replicas
 *      are restarted at once; a handler stuck past its limit is reported by
 *      the watchdog and the replica replaced; the client sees a few failed
 *      calls and a high success ratio.
 *   2. a permanent fault: now every request crashes its replica. Restarts
 *      pile up past the service supervisor's intensity (20 per second): it
 *      gives up and exits, which its parent sees as a crash. The escalation
 *      is an event (BW_EV_SUP_ESCALATED). The root restarts the whole
 *      service subtree, after a backoff.
 *   3. recovery: the fault is repaired; the restarted service answers again.
 * Events (restarts, hangs, escalations) are counted by an observer actor
 * subscribed to the event bus; main asks it for the tally with bw_call.
 *
 *   ./chaos                 10 s, a status line per second
 *   ./chaos --duration 3    3 s
 *   ./chaos --quiet         only the summary line (ctest uses this)
 *
 * Exit code 0 when supervision did what is described, 1 otherwise. The
 * checks are on what happened (restarts >= 1, a hang seen, an escalation
 * seen, calls answered before and after), never on timing or exact counts.
 * BW_TEST_SCALE=N (sanitizer builds) slows the client down N times.
 * Only the public header is used.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <bulwark/bulwark.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
  WORK = 1,  /* client -> replica (request); reply: the replica's answer */
  TALLY,     /* main -> observer (request); reply: struct tally */
};

#define NREPLICAS 3u
#define CRASH_PER_MILLE 20u /* 2 % of requests crash their replica */
#define HANG_PER_MILLE 10u  /* 1 % hang: the handler blocks ... */
#define HANG_MS 300u        /* ... this long, */
#define HANG_LIMIT_MS 50u   /* past the watchdog's limit */
#define CALL_TIMEOUT_MS 100u /* the client gives up on a hung call (times BW_TEST_SCALE) */
#define CLIENT_PAUSE_MS 2u  /* between calls (times BW_TEST_SCALE) */

/* The fault switch main turns: every request crashes (phase 2). */
static atomic_bool g_permanent_fault;
static bool g_quiet;
static unsigned g_scale = 1;

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
  fflush(stdout);
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
  nanosleep(&ts, NULL);
}

/* === The replica: a worker that fails in the two ways workers fail ========= */

struct replica {
  uint32_t id;
  uint64_t rng; /* xorshift64, seeded per incarnation */
  uint64_t served;
};

static uint64_t rnd(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static int replica_init(bw_ctx_t *ctx, void *state, void *arg) {
  struct replica *r = state;
  r->id = *(const uint32_t *)arg;
  r->rng = bw_self(ctx) | 1u; /* a new sequence per incarnation, never 0 */
  return 0;
}

static int replica_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct replica *r = state;
  if (msg->type != WORK || !(msg->flags & BW_MSGF_REQUEST))
    return BW_CONTINUE;

  if (atomic_load(&g_permanent_fault))
    bw_fail(ctx, BW_ESTATE, "replica-%u: permanent fault", r->id);
  uint64_t roll = rnd(&r->rng) % 1000u;
  if (roll < CRASH_PER_MILLE)
    /* A crash: the caller's bw_call returns BW_ENOPROC at once, the
     * supervisor restarts the replica with fresh state. */
    bw_fail(ctx, BW_ESTATE, "replica-%u: random crash", r->id);
  if (roll < CRASH_PER_MILLE + HANG_PER_MILLE) {
    /* A hang: a handler that blocks (a stuck call into a library, say).
     * The watchdog sees it run past HANG_LIMIT_MS and tells the supervisor,
     * which replaces the replica at once (hang_is_crash) and kills this one
     * when the handler returns; meanwhile the runtime lends the schedulers
     * a spare thread. The caller's call fails: BW_ENOPROC as soon as the
     * replica is replaced, or BW_ETIMEDOUT if its own deadline comes first. */
    sleep_ms(HANG_MS);
  }
  r->served++;
  (void)bw_reply(ctx, msg, 0, WORK, &r->served, sizeof r->served);
  return BW_CONTINUE;
}

static const bw_behaviour_t replica_behaviour = {
    .name = "replica",
    .state_size = sizeof(struct replica),
    .init = replica_init,
    .handle = replica_handle,
};

/* === The observer: counts supervision events =============================== */

struct tally {
  uint64_t crashes;     /* children that exited with a crash */
  uint64_t restarts;    /* children restarted */
  uint64_t hangs;       /* watchdog reports */
  uint64_t escalations; /* supervisors that gave up */
};

static int observer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct tally *t = state;
  if (msg->type == TALLY && (msg->flags & BW_MSGF_REQUEST)) {
    (void)bw_reply(ctx, msg, 0, TALLY, t, sizeof *t);
    return BW_CONTINUE;
  }
  if (msg->type != BW_MSG_EVENT || msg->len < sizeof(bw_event_t))
    return BW_CONTINUE;
  bw_event_t ev;
  memcpy(&ev, msg->data, sizeof ev);
  switch (ev.type) {
  case BW_EV_CHILD_EXITED:
    if (ev.reason_kind == BW_REASON_CRASH || ev.reason_kind == BW_REASON_KILLED)
      t->crashes++;
    break;
  case BW_EV_CHILD_RESTARTED:
    t->restarts++;
    break;
  case BW_EV_WATCHDOG_HUNG:
    t->hangs++;
    say("  [event] %s/%s hung (running %lld ms)\n", ev.source_name, ev.subject_id,
        (long long)(ev.a / 1000000));
    break;
  case BW_EV_SUP_ESCALATED:
    t->escalations++;
    say("  [event] supervisor %s escalated: %s\n", ev.source_name, ev.text);
    break;
  default:
    break;
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t observer_behaviour = {
    .name = "observer",
    .state_size = sizeof(struct tally),
    .handle = observer_handle,
};

/* === The tree, as C data =================================================== */

static const uint32_t replica_ids[NREPLICAS] = {0, 1, 2};
#define REPLICA(i)                                                                     \
  {.id = "replica-" #i, .behaviour = &replica_behaviour, .arg = (void *)&replica_ids[i], \
   .name = "replica-" #i, .hang_limit_ms = HANG_LIMIT_MS, .hang_is_crash = true}
static const bw_child_spec_t replicas[NREPLICAS] = {REPLICA(0), REPLICA(1), REPLICA(2)};

static const bw_sup_spec_t service = {
    .name = "service",
    .strategy = BW_ONE_FOR_ONE,
    .intensity = 20, /* more than 20 restarts ... */
    .period_ms = 1000, /* ... within a second: give up, escalate */
    .children = replicas,
    .nchildren = NREPLICAS,
};

static const bw_child_spec_t root_children[] = {
    {.id = "service", .supervisor = &service, .type = BW_SUPERVISOR},
};

static const bw_sup_spec_t root = {
    .name = "root",
    .strategy = BW_ONE_FOR_ONE,
    .intensity = 10,
    .period_ms = 10000,
    /* Restart a failing subtree after 100 ms, then 200, 400 ... up to 1 s:
     * a permanent fault then costs a few restarts, not a tight loop. */
    .backoff = {.initial_ms = 100, .max_ms = 1000},
    .children = root_children,
    .nchildren = 1,
};

/* === The client and main =================================================== */

static int g_failures;

#define EXPECT(cond)                                                                   \
  ((cond) ? true                                                                       \
          : (fprintf(stderr, "chaos: FAILED at %s:%d: %s\n", __FILE__, __LINE__, #cond), \
             g_failures++, false))

/* Calls per phase, and failed calls by error code. */
struct phase_stats {
  const char *name;
  uint64_t ok, failed;
  uint64_t by_code[-BW__ERR_LAST + 1];
};

/* One client call to replica i, by name (its pid changes on restart). */
static void client_call(bw_runtime_t *rt, unsigned i, struct phase_stats *ps) {
  char name[16];
  snprintf(name, sizeof name, "replica-%u", i);
  bw_pid_t pid;
  bw_reply_t reply;
  int rc = bw_whereis(rt, name, &pid); /* BW_ENOTFOUND while it restarts */
  if (rc == 0)
    rc = bw_call(rt, pid, WORK, NULL, 0, CALL_TIMEOUT_MS * g_scale, &reply);
  if (rc == 0) {
    ps->ok++;
    return;
  }
  ps->failed++;
  ps->by_code[rc < 0 && rc > BW__ERR_LAST ? -rc : 0]++;
}

static struct tally get_tally(bw_runtime_t *rt, bw_pid_t observer) {
  struct tally t = {0};
  bw_reply_t r;
  if (EXPECT(bw_call(rt, observer, TALLY, NULL, 0, 5000, &r) == 0) && r.len == sizeof t)
    memcpy(&t, r.data, sizeof t);
  return t;
}

static double ratio(const struct phase_stats *ps) {
  uint64_t n = ps->ok + ps->failed;
  return n ? 100.0 * (double)ps->ok / (double)n : 0.0;
}

static void print_phase(const struct phase_stats *ps) {
  say("  %-10s calls %6llu, ok %6llu (%5.1f %%)", ps->name,
      (unsigned long long)(ps->ok + ps->failed), (unsigned long long)ps->ok, ratio(ps));
  for (int c = 1; c <= -BW__ERR_LAST; c++)
    if (ps->by_code[c])
      say(", %s %llu", bw_err_name(-c), (unsigned long long)ps->by_code[c]);
  say("\n");
}

static int usage(const char *argv0) {
  fprintf(stderr, "usage: %s [--duration SECONDS] [--quiet]\n", argv0);
  return 2;
}

int main(int argc, char **argv) {
  unsigned duration_s = 10;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0)
      g_quiet = true;
    else if (strcmp(argv[i], "--duration") == 0 && i + 1 < argc)
      duration_s = (unsigned)strtoul(argv[++i], NULL, 10);
    else
      return usage(argv[0]);
  }
  if (duration_s == 0 || duration_s > 86400)
    return usage(argv[0]);
  const char *scale = getenv("BW_TEST_SCALE");
  if (scale != NULL && atoi(scale) > 1)
    g_scale = (unsigned)atoi(scale);

  bw_runtime_t *rt = NULL;
  int rc = bw_runtime_create(NULL, &rt);
  if (rc != 0) {
    fprintf(stderr, "chaos: bw_runtime_create: %s\n", bw_strerror(rc));
    return 1;
  }
  bw_pid_t observer = BW_PID_NONE, top = BW_PID_NONE;
  bw_sup_error_t err;
  rc = bw_spawn(rt, &observer_behaviour, NULL, NULL, &observer);
  if (rc == 0)
    rc = bw_event_subscribe(rt, observer,
                            BW_EV_MASK(BW_EV_CHILD_EXITED) | BW_EV_MASK(BW_EV_CHILD_RESTARTED) |
                                BW_EV_MASK(BW_EV_WATCHDOG_HUNG) |
                                BW_EV_MASK(BW_EV_SUP_ESCALATED));
  if (rc == 0 && (rc = bw_supervisor_start(rt, &root, &top, &err)) != 0)
    fprintf(stderr, "chaos: start failed at %s: %s\n", err.child, err.message);
  if (rc != 0) {
    fprintf(stderr, "chaos: setup: %s (%s)\n", bw_err_name(rc), bw_strerror(rc));
    bw_runtime_destroy(rt);
    return 1;
  }
  say("chaos: %u replicas, %u %% crash and %u %% hang per request, %u s\n", NREPLICAS,
      CRASH_PER_MILLE / 10, HANG_PER_MILLE / 10, duration_s);

  /* The client loop, with phase changes. Each phase ends when its time is
   * up *and* what it is there to show has happened; a slow machine
   * stretches a phase (up to a deadline) rather than failing it. */
  struct phase_stats phases[3] = {{.name = "chaos"}, {.name = "permanent"}, {.name = "recovered"}};
  const uint64_t t0 = bw_now_ms(rt), run_ms = (uint64_t)duration_s * 1000u;
  const uint64_t deadline = run_ms + 60000u;
  uint64_t next_status = 1000, t = 0, esc_before = 0;
  struct tally tl = {0}, tl_chaos = {0};
  int phase = 0;
  unsigned next = 0;
  say("== phase 1: chaos\n");
  for (;;) {
    client_call(rt, next, &phases[phase]);
    next = (next + 1) % NREPLICAS;
    sleep_ms(CLIENT_PAUSE_MS * g_scale);
    t = bw_now_ms(rt) - t0;
    tl = get_tally(rt, observer);
    if (t >= next_status) {
      say("t=%2llus %-9s ok %5.1f %% of %llu calls | crashes %llu, hangs %llu, restarts %llu, "
          "escalations %llu\n",
          (unsigned long long)(t / 1000), phases[phase].name, ratio(&phases[phase]),
          (unsigned long long)(phases[phase].ok + phases[phase].failed),
          (unsigned long long)tl.crashes, (unsigned long long)tl.hangs,
          (unsigned long long)tl.restarts, (unsigned long long)tl.escalations);
      next_status += 1000;
    }
    if (t >= deadline)
      break;
    if (phase == 0 && t >= run_ms * 6 / 10 && tl.restarts >= 1 && tl.hangs >= 1 &&
        phases[0].ok > 0) {
      tl_chaos = tl;
      esc_before = tl.escalations;
      say("== phase 2: the fault becomes permanent: every request crashes its replica\n");
      atomic_store(&g_permanent_fault, true);
      phase = 1;
    } else if (phase == 1 && tl.escalations > esc_before) {
      say("== phase 3: fault repaired\n");
      atomic_store(&g_permanent_fault, false);
      phase = 2;
    } else if (phase == 2 && t >= run_ms && phases[2].ok >= 10) {
      break;
    }
  }
  EXPECT(t < deadline); /* every phase reached its goal */
  tl = get_tally(rt, observer);
  bool root_alive = bw_is_alive(rt, top);
  bw_child_info_t info;
  size_t n = 0;
  EXPECT(bw_sup_which_children(rt, top, &info, 1, &n) == 0 && n == 1);

  EXPECT(bw_runtime_stop(rt) == 0);
  bw_runtime_destroy(rt);

  say("\nsummary:\n");
  for (int i = 0; i < 3; i++)
    print_phase(&phases[i]);
  say("  events: crashes %llu, hangs %llu, restarts %llu, escalations %llu; service "
      "subtree restarted %u time(s) by the root\n",
      (unsigned long long)tl.crashes, (unsigned long long)tl.hangs,
      (unsigned long long)tl.restarts, (unsigned long long)tl.escalations, info.restarts);

  /* Self-check: what supervision must have done, not how fast. */
  EXPECT(phases[0].ok > 0);             /* the service answered under chaos */
  EXPECT(tl_chaos.restarts >= 1);       /* crashed replicas were restarted */
  EXPECT(tl_chaos.hangs >= 1);          /* the watchdog caught a hang */
  EXPECT(tl.escalations > esc_before);  /* the permanent fault escalated */
  EXPECT(info.restarts >= 1);           /* the root restarted the subtree */
  EXPECT(phases[2].ok > 0);             /* and the service came back */
  EXPECT(root_alive);                   /* the root itself never gave up */

  if (g_failures) {
    fprintf(stderr, "chaos: FAILED: %d unexpected result(s)\n", g_failures);
    return 1;
  }
  printf("%schaos: ok: under chaos %.1f %% of %llu calls answered (%llu restarts, %llu hangs); "
         "permanent fault escalated %llu time(s); after repair %.1f %% of %llu answered\n",
         g_quiet ? "" : "\n", ratio(&phases[0]),
         (unsigned long long)(phases[0].ok + phases[0].failed),
         (unsigned long long)tl_chaos.restarts, (unsigned long long)tl_chaos.hangs,
         (unsigned long long)(tl.escalations - esc_before), ratio(&phases[2]),
         (unsigned long long)(phases[2].ok + phases[2].failed));
  return 0;
}
