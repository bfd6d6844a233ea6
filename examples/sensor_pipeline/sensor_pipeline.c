/*
 * sensor_pipeline: a data pipeline that loses nothing silently.
 *
 *   sensors --reading--> aggregator --batch--> writer --[breaker]--> sink pool
 *   (4 actors, timers)   (batches of 16)       (in-flight table)    (bulkhead:
 *                                                                    2 slow workers
 *                                                                    + a queue)
 *
 * What it shows, in order:
 *   1. a supervision tree declared as C data: a rest_for_one root whose
 *      children start in dependency order (sensors, breaker, sink pool,
 *      aggregator, writer), with a nested one_for_one supervisor for the
 *      sensors;
 *   2. a slow sink behind a bulkhead (bounded concurrency and queue) and a
 *      circuit breaker (guard mode: ask, call, report);
 *   3. rest_for_one: when the aggregator crashes (injected), the writer
 *      started after it is restarted too, the stages before it are not;
 *   4. a sink outage (injected): the breaker opens, fails fast, closes again;
 *   5. accounting: every reading produced is stored or dropped for a
 *      counted reason. Dropped readings are found where they are dropped: the
 *      writer counts refusals (breaker open, bulkhead full, queue timeout,
 *      write error), the aggregator counts what it held when it crashed, and
 *      a dead-letter subscriber counts readings in messages that were never
 *      handled (sent to a stage that was restarting, or queued in one that
 *      exited). At the end: produced = stored + dropped + in flight.
 *
 *   ./sensor_pipeline                  10 s, a status line per second
 *   ./sensor_pipeline --duration 3     3 s
 *   ./sensor_pipeline --quiet          only the summary line (ctest uses this)
 *
 * Exit code 0 when the accounting balances and the faults had the effects
 * described, 1 otherwise. BW_TEST_SCALE=N (sanitizer builds) slows the
 * sensors down N times. Only the public header is used.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <bulwark/bulwark.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* === Messages ============================================================== */

enum {
  SENSOR_TICK = 1, /* sensor: its own interval timer */
  READING,         /* sensor -> aggregator: one struct reading */
  AGG_FLUSH,       /* aggregator: its flush timer */
  BATCH,           /* aggregator -> writer: struct batch_hdr + n readings */
  STORE,           /* writer -> sink pool (request): the same batch bytes */
};

struct reading {
  uint32_t sensor;
  float value;
};

/* A batch is a header followed by n readings, in one inline message. */
struct batch_hdr {
  uint32_t seq; /* 1, 2, 3 ... per aggregator incarnation */
  uint32_t n;   /* readings that follow */
  float mean, max;
};

#define NSENSORS 4u
#define BATCH_MAX 16u /* 16 + 16 * 8 = 144 bytes: fits a bulkhead job (168) */
#define SENSOR_PERIOD_MS 5u /* per sensor: 200 readings/s each */
#define FLUSH_MS 50u        /* a partial batch waits at most this long */
#define PENDING_MAX 64u     /* writer: batches in flight to the sink */
#define SINK_EWRITE (-1000) /* our own status code: the sink's write failed */
#define OUTAGE_WRITES 20    /* the injected outage fails this many writes */

_Static_assert(sizeof(struct batch_hdr) + BATCH_MAX * sizeof(struct reading) <=
                   BW_BULKHEAD_PAYLOAD_MAX,
               "a batch must fit a bulkhead message job");

/* How many readings a message of ours carries; 0 for other messages. The
 * dead-letter subscriber uses it: a dead letter tells type and length. */
static uint32_t readings_in(uint32_t type, uint32_t len) {
  if (type == READING)
    return len == sizeof(struct reading) ? 1u : 0u;
  if (type == BATCH && len >= sizeof(struct batch_hdr))
    return (uint32_t)((len - sizeof(struct batch_hdr)) / sizeof(struct reading));
  return 0;
}

/* === The ledger: where every reading ended up ============================== */

/* Why a reading was dropped. The first BW_DL__COUNT reasons are the dead
 * letter reasons, in bw_dead_reason_t's order. */
enum drop {
  DROP_NO_RECEIVER = BW_DL__COUNT, /* the next stage was restarting: no pid */
  DROP_CRASH,                /* held by the aggregator when it crashed */
  DROP_CIRCUIT_OPEN,         /* the breaker refused: the sink was failing */
  DROP_BULKHEAD_FULL,        /* sink workers and queue all taken */
  DROP_QUEUE_TIMEOUT,        /* waited in the sink's queue too long */
  DROP_SINK_ERROR,           /* the write failed */
  DROP_BACKLOG,              /* the writer had PENDING_MAX batches in flight */
  DROP_OTHER,                /* any other error (printed by code) */
  DROP__COUNT
};

static const char *drop_name(int d) {
  static const char *const names[] = {"no_receiver", "crash",      "circuit_open", "bulkhead_full",
                                      "queue_timeout", "sink_error", "backlog",
                                      "other"};
  return d < BW_DL__COUNT ? bw_dead_reason_name(d) : names[d - BW_DL__COUNT];
}

/* The example's own bookkeeping, for its summary and self-check: counters
 * bumped by the stage that decides a reading's fate, exactly once. (The
 * stages themselves share nothing: they talk through messages.) */
static struct {
  atomic_uint_fast64_t produced, stored;
  atomic_uint_fast64_t dropped[DROP__COUNT];
} g_ledger;

static void ledger_drop(int why, uint64_t n) {
  atomic_fetch_add(&g_ledger.dropped[why], n);
}

static uint64_t ledger_dropped_total(void) {
  uint64_t sum = 0;
  for (int i = 0; i < DROP__COUNT; i++)
    sum += atomic_load(&g_ledger.dropped[i]);
  return sum;
}

/* Switches main flips; the actors read them (the fault injection). */
static atomic_bool g_producing;      /* sensors make readings */
static atomic_bool g_crash_aggregator; /* the aggregator crashes on its next reading */
static atomic_int g_sink_fail_next;  /* the sink fails this many writes */
static bool g_quiet;
static unsigned g_scale = 1; /* BW_TEST_SCALE */

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

/* Sends n readings to the stage registered as name. By name, because a
 * stage's pid changes each time it is restarted. While it is restarting the
 * name is free: there is nobody to send to, and the sender counts the
 * readings as dropped (no_receiver). A send to a pid that exits just then
 * fails with BW_ENOPROC: the runtime made it a dead letter, and the ledger
 * actor counts it. So a sender counts only what the runtime did not take. */
static void send_to_stage(bw_ctx_t *ctx, const char *name, uint32_t type, const void *data,
                          size_t len, uint32_t n) {
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  bw_pid_t to = BW_PID_NONE;
  int rc = bw_whereis(rt, name, &to);
  if (rc == 0)
    rc = bw_send(rt, to, type, data, len);
  if (rc == BW_ENOTFOUND)
    ledger_drop(DROP_NO_RECEIVER, n);
  else if (rc != 0 && rc != BW_ENOPROC)
    ledger_drop(DROP_OTHER, n);
}

/* A tiny PRNG per actor (xorshift64): actors keep their own, no shared state. */
static uint64_t rnd(uint64_t *s) {
  uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* === Stage 1: sensors ====================================================== */

struct sensor {
  uint32_t id;
  uint64_t rng;
  bw_timer_t tick;
};

static int sensor_init(bw_ctx_t *ctx, void *state, void *arg) {
  struct sensor *s = state;
  s->id = *(const uint32_t *)arg;
  s->rng = bw_self(ctx) ^ ((uint64_t)s->id << 32);
  /* The sensor samples on its own timer: handlers never sleep. */
  return bw_send_interval(bw_ctx_runtime(ctx), bw_self(ctx), SENSOR_PERIOD_MS * g_scale,
                          SENSOR_TICK, NULL, 0, &s->tick);
}

static int sensor_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct sensor *s = state;
  if (msg->type != SENSOR_TICK || !atomic_load(&g_producing))
    return BW_CONTINUE;

  struct reading r = {.sensor = s->id, .value = 20.0f + (float)(rnd(&s->rng) % 1000) / 100.0f};
  atomic_fetch_add(&g_ledger.produced, 1);
  send_to_stage(ctx, "aggregator", READING, &r, sizeof r, 1);
  return BW_CONTINUE;
}

static void sensor_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  struct sensor *s = state;
  (void)bw_timer_cancel(bw_ctx_runtime(ctx), s->tick);
}

static const bw_behaviour_t sensor_behaviour = {
    .name = "sensor",
    .state_size = sizeof(struct sensor),
    .init = sensor_init,
    .handle = sensor_handle,
    .terminate = sensor_terminate,
};

/* === Stage 2: the aggregator =============================================== */

struct aggregator {
  uint32_t seq;                    /* batches sent */
  uint32_t n;                      /* readings in the batch being built */
  struct reading held[BATCH_MAX];  /* the batch being built */
  bw_timer_t flush;
};

static int aggregator_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)arg;
  struct aggregator *a = state;
  return bw_send_interval(bw_ctx_runtime(ctx), bw_self(ctx), FLUSH_MS, AGG_FLUSH, NULL, 0,
                          &a->flush);
}

/* Sends the batch being built to the writer. */
static void aggregator_flush(bw_ctx_t *ctx, struct aggregator *a) {
  if (a->n == 0)
    return;
  uint8_t buf[sizeof(struct batch_hdr) + BATCH_MAX * sizeof(struct reading)];
  struct batch_hdr h = {.seq = ++a->seq, .n = a->n, .mean = 0.0f, .max = a->held[0].value};
  for (uint32_t i = 0; i < a->n; i++) {
    h.mean += a->held[i].value / (float)a->n;
    if (a->held[i].value > h.max)
      h.max = a->held[i].value;
  }
  memcpy(buf, &h, sizeof h);
  memcpy(buf + sizeof h, a->held, a->n * sizeof(struct reading));
  size_t len = sizeof h + a->n * sizeof(struct reading);
  send_to_stage(ctx, "writer", BATCH, buf, len, a->n);
  a->n = 0;
}

static int aggregator_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct aggregator *a = state;
  switch (msg->type) {
  case READING:
    if (msg->len != sizeof(struct reading))
      return BW_CONTINUE;
    memcpy(&a->held[a->n++], msg->data, sizeof(struct reading));
    /* Fault injection: a bug that corrupts the aggregator. bw_fail unwinds
     * at once; what this actor held is lost (terminate counts it, this
     * reading included), what is queued for it becomes dead letters
     * ("exited"), and its supervisor restarts it, and, rest_for_one, the
     * writer after it. */
    if (atomic_exchange(&g_crash_aggregator, false))
      bw_fail(ctx, BW_ESTATE, "aggregator: injected crash with %u readings held", a->n);
    if (a->n == BATCH_MAX)
      aggregator_flush(ctx, a);
    return BW_CONTINUE;
  case AGG_FLUSH:
    aggregator_flush(ctx, a); /* a partial batch never waits long */
    return BW_CONTINUE;
  default:
    return BW_CONTINUE;
  }
}

/* Runs after a crash too: the one place that knows what the actor held. */
static void aggregator_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  struct aggregator *a = state;
  (void)bw_timer_cancel(bw_ctx_runtime(ctx), a->flush);
  if (reason->kind == BW_REASON_CRASH) {
    ledger_drop(DROP_CRASH, a->n); /* state after a crash is not trusted */
    a->n = 0;
  } else {
    aggregator_flush(ctx, a); /* an orderly stop hands its batch on */
  }
}

static const bw_behaviour_t aggregator_behaviour = {
    .name = "aggregator",
    .state_size = sizeof(struct aggregator),
    .init = aggregator_init,
    .handle = aggregator_handle,
    .terminate = aggregator_terminate,
};

/* === Stage 3: the writer =================================================== */

/*
 * The writer sends each batch to the sink pool as a request, through the
 * breaker's guard, and keeps what is in flight in a table: every request is
 * answered exactly once (by a sink worker, by the pool's refusal, or with
 * BW_ENOPROC if the pool dies), so the writer alone settles each batch.
 *
 * It is downstream of the aggregator: it follows the aggregator's batch
 * sequence, which starts over with each new aggregator; rest_for_one
 * restarts it along with the aggregator, so a writer never sees two
 * aggregators' sequences.
 *
 * It traps exits so that a stop is a drain: on the shutdown signal it
 * stops taking new work only once the batches in flight are settled, then
 * exits (its child spec gives it shutdown_ms for that).
 */
struct app {
  bw_breaker_t *breaker; /* the handle; its actor is a child of the tree */
  bw_bulkhead_t *sink;   /* the same for the sink pool */
};

struct pending {
  uint64_t ref; /* 0 = free slot */
  uint32_t n;
  bw_breaker_permit_t permit;
};

struct writer {
  bw_breaker_t *breaker;
  uint32_t expect_seq; /* next batch sequence number expected */
  uint64_t gaps;       /* batches that never arrived (dead letters: counted there) */
  uint32_t inflight;
  struct pending p[PENDING_MAX];
  bool draining;
  bw_reason_t exit_reason;
};

static int writer_init(bw_ctx_t *ctx, void *state, void *arg) {
  struct writer *w = state;
  w->breaker = ((const struct app *)arg)->breaker;
  w->expect_seq = 1;
  bw_trap_exit(ctx, true);
  return 0;
}

/* Where a failed store's readings are counted. */
static int drop_reason_of(int status) {
  switch (status) {
  case BW_ECIRCUIT_OPEN: return DROP_CIRCUIT_OPEN;
  case BW_EBULKHEAD_FULL: return DROP_BULKHEAD_FULL;
  case BW_ETIMEDOUT: return DROP_QUEUE_TIMEOUT;
  case SINK_EWRITE: return DROP_SINK_ERROR;
  default: return DROP_OTHER;
  }
}

/* For the breaker: a full bulkhead says nothing about the sink's health. */
static int classify_store(int status, void *arg) {
  (void)arg;
  if (status == 0)
    return BW_BREAKER_SUCCESS;
  if (status == BW_EBULKHEAD_FULL || status == BW_ERATE_LIMITED)
    return BW_BREAKER_IGNORED;
  return BW_BREAKER_FAILURE;
}

static void writer_store(bw_ctx_t *ctx, struct writer *w, const bw_msg_t *batch, uint32_t n) {
  if (w->inflight == PENDING_MAX) {
    ledger_drop(DROP_BACKLOG, n);
    return;
  }
  /* Guard: one load when closed. Open: fail fast, the sink gets a rest. */
  bw_breaker_permit_t permit;
  if (bw_breaker_acquire(w->breaker, &permit) != 0) {
    ledger_drop(DROP_CIRCUIT_OPEN, n);
    return;
  }
  bw_pid_t sink = BW_PID_NONE;
  uint64_t ref = 0;
  int rc = bw_whereis(bw_ctx_runtime(ctx), "sink", &sink);
  /* No deadline (0): the pool's queue timeout bounds the wait, and a
   * request always gets exactly one answer. A deadline of our own would
   * let a late success arrive after we had counted the batch as dropped. */
  if (rc == 0)
    rc = bw_request(ctx, sink, STORE, batch->data, batch->len, 0, &ref);
  if (rc != 0) { /* nothing was queued: settled here */
    (void)bw_breaker_report(w->breaker, &permit, rc);
    ledger_drop(drop_reason_of(rc), n);
    return;
  }
  for (uint32_t i = 0; i < PENDING_MAX; i++) {
    if (w->p[i].ref == 0) {
      w->p[i] = (struct pending){.ref = ref, .n = n, .permit = permit};
      w->inflight++;
      return;
    }
  }
}

/* A reply from the pool: the batch is settled. */
static void writer_settle(bw_ctx_t *ctx, struct writer *w, const bw_msg_t *reply) {
  (void)ctx;
  for (uint32_t i = 0; i < PENDING_MAX; i++) {
    struct pending *p = &w->p[i];
    if (p->ref != reply->ref)
      continue;
    if (reply->status == 0)
      atomic_fetch_add(&g_ledger.stored, p->n);
    else
      ledger_drop(drop_reason_of(reply->status), p->n);
    (void)bw_breaker_report(w->breaker, &p->permit, reply->status);
    p->ref = 0;
    w->inflight--;
    return;
  }
}

static void writer_exit_if_drained(bw_ctx_t *ctx, struct writer *w) {
  if (w->draining && w->inflight == 0)
    (void)bw_exit_self(ctx, w->exit_reason.kind, w->exit_reason.code, "drained");
}

static int writer_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct writer *w = state;

  if (msg->flags & BW_MSGF_REPLY) {
    writer_settle(ctx, w, msg);
    writer_exit_if_drained(ctx, w);
    return BW_CONTINUE;
  }
  switch (msg->type) {
  case BATCH: {
    struct batch_hdr h;
    uint32_t n = readings_in(msg->type, msg->len);
    if (n == 0)
      return BW_CONTINUE;
    memcpy(&h, msg->data, sizeof h);
    if (h.seq != w->expect_seq)
      w->gaps += h.seq > w->expect_seq ? h.seq - w->expect_seq : 0;
    w->expect_seq = h.seq + 1;
    writer_store(ctx, w, msg, n); /* while draining too: nothing is refused */
    return BW_CONTINUE;
  }
  case BW_MSG_EXIT: {
    /* From the supervisor: stop (shutdown), or it is going down itself. */
    bw_reason_t r;
    if (msg->len < sizeof r)
      return BW_CONTINUE;
    memcpy(&r, msg->data, sizeof r);
    if (r.kind == BW_REASON_NORMAL)
      return BW_CONTINUE;
    w->draining = true;
    w->exit_reason = r;
    writer_exit_if_drained(ctx, w);
    return BW_CONTINUE;
  }
  default:
    return BW_CONTINUE;
  }
}

static const bw_behaviour_t writer_behaviour = {
    .name = "writer",
    .state_size = sizeof(struct writer),
    .init = writer_init,
    .handle = writer_handle,
};

/* === Stage 4: the sink, a bulkhead pool of slow workers ==================== */

/* A sink worker: one "connection" to slow storage. It runs on a thread of
 * its own (the pool's dedicated_threads), so its blocking write never holds
 * up a scheduler thread. */
struct sink_conn {
  uint64_t rng;
  uint64_t writes;
};

static int sink_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)arg;
  struct sink_conn *c = state;
  c->rng = bw_self(ctx);
  return 0;
}

static int sink_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct sink_conn *c = state;
  if (msg->type != STORE || !(msg->flags & BW_MSGF_REQUEST))
    return BW_CONTINUE;
  sleep_ms(2u + (unsigned)(rnd(&c->rng) % 10u)); /* the slow write: 2-11 ms */
  /* Fault injection: an outage fails the next OUTAGE_WRITES writes. */
  int left = atomic_load(&g_sink_fail_next);
  while (left > 0 && !atomic_compare_exchange_weak(&g_sink_fail_next, &left, left - 1)) {
  }
  int status = left > 0 ? SINK_EWRITE : 0;
  if (status == 0)
    c->writes++;
  (void)bw_reply(ctx, msg, status, STORE, NULL, 0);
  return BW_CONTINUE;
}

static const bw_behaviour_t sink_conn_behaviour = {
    .name = "sink-conn",
    .state_size = sizeof(struct sink_conn),
    .init = sink_init,
    .handle = sink_handle,
};

static const bw_bulkhead_opts_t sink_opts = {
    .name = "sink",
    .workers = 2,             /* at most 2 writes at once ... */
    .queue_capacity = 8,      /* ... 8 more may wait ... */
    .queue_timeout_ms = 250,  /* ... this long; the rest is refused */
    .worker = &sink_conn_behaviour,
    .dedicated_threads = true,
};

/* === The tree, as C data =================================================== */

static const uint32_t sensor_ids[NSENSORS] = {0, 1, 2, 3};
static const bw_child_spec_t sensor_specs[NSENSORS] = {
    {.id = "sensor-0", .behaviour = &sensor_behaviour, .arg = (void *)&sensor_ids[0]},
    {.id = "sensor-1", .behaviour = &sensor_behaviour, .arg = (void *)&sensor_ids[1]},
    {.id = "sensor-2", .behaviour = &sensor_behaviour, .arg = (void *)&sensor_ids[2]},
    {.id = "sensor-3", .behaviour = &sensor_behaviour, .arg = (void *)&sensor_ids[3]},
};
static const bw_sup_spec_t sensors_sup = {
    .name = "sensors",
    .strategy = BW_ONE_FOR_ONE, /* sensors are independent of one another */
    .intensity = 10,
    .period_ms = 1000,
    .children = sensor_specs,
    .nchildren = NSENSORS,
};

static struct app g_app; /* the writer's init argument: the breaker handle */

/* rest_for_one: each child depends on those declared before it. The
 * breaker's and the sink pool's entries are filled in main from their
 * handles (bw_breaker_child_spec, bw_bulkhead_child_spec), the parts that
 * cannot be constants. */
enum { CH_SENSORS, CH_BREAKER, CH_SINK, CH_AGGREGATOR, CH_WRITER, CH__COUNT };
static bw_child_spec_t pipeline_children[CH__COUNT] = {
    [CH_SENSORS] = {.id = "sensors", .supervisor = &sensors_sup, .type = BW_SUPERVISOR},
    [CH_BREAKER] = {.id = "breaker"}, /* filled in main */
    [CH_SINK] = {.id = "sink"}, /* filled in main */
    [CH_AGGREGATOR] = {.id = "aggregator", .behaviour = &aggregator_behaviour,
                       .name = "aggregator"},
    [CH_WRITER] = {.id = "writer", .behaviour = &writer_behaviour, .arg = &g_app,
                   .name = "writer", .shutdown_ms = 10000 /* time to drain */},
};
static const bw_sup_spec_t pipeline = {
    .name = "pipeline",
    .strategy = BW_REST_FOR_ONE,
    .intensity = 10,
    .period_ms = 1000,
    .children = pipeline_children,
    .nchildren = CH__COUNT,
};

/* === The ledger actor: dead letters and events ============================= */

/* Restarts seen as events (BW_EV_CHILD_RESTARTED), per child of the root.
 * The supervisor's own restart count (bw_sup_which_children) counts only
 * the child whose exit caused a restart, not the siblings restarted with
 * it; the events show both. */
static atomic_uint g_restart_events[CH__COUNT];

/* Subscribed to dead letters: counts the readings in messages that were
 * never handled, by reason. Also prints supervision and breaker events. */
static int ledger_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  if (msg->type == BW_MSG_DEAD_LETTER && msg->len >= sizeof(bw_dead_letter_t)) {
    bw_dead_letter_t dl;
    memcpy(&dl, msg->data, sizeof dl);
    uint32_t n = readings_in(dl.type, dl.len);
    if (n > 0 && dl.reason >= 0 && dl.reason < BW_DL__COUNT)
      ledger_drop(dl.reason, n);
  } else if (msg->type == BW_MSG_EVENT && msg->len >= sizeof(bw_event_t)) {
    bw_event_t ev;
    memcpy(&ev, msg->data, sizeof ev);
    if (ev.type == BW_EV_BREAKER_STATE)
      say("  [event] breaker %s: %s -> %s\n", ev.source_name, bw_breaker_state_name((int)ev.a),
          bw_breaker_state_name((int)ev.b));
    else if (ev.type == BW_EV_CHILD_EXITED && ev.reason_kind == BW_REASON_CRASH)
      say("  [event] %s/%s crashed: %s\n", ev.source_name, ev.subject_id, ev.text);
    else if (ev.type == BW_EV_CHILD_RESTARTED && strcmp(ev.source_name, "pipeline") == 0) {
      for (size_t i = 0; i < CH__COUNT; i++)
        if (strcmp(ev.subject_id, pipeline_children[i].id) == 0)
          atomic_fetch_add(&g_restart_events[i], 1);
    }
    if (ev.type == BW_EV_CHILD_RESTARTED)
      say("  [event] %s/%s restarted (restart #%lld)\n", ev.source_name, ev.subject_id,
          (long long)ev.a);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t ledger_behaviour = {.name = "ledger", .handle = ledger_handle};

/* === main ================================================================== */

static int g_failures;

#define EXPECT(cond)                                                                 \
  ((cond) ? true                                                                     \
          : (fprintf(stderr, "sensor_pipeline: FAILED at %s:%d: %s\n", __FILE__,     \
                     __LINE__, #cond),                                               \
             g_failures++, false))

/* Restart counts of the root's children, by index. */
static bool child_restarts(bw_runtime_t *rt, bw_pid_t root, uint32_t out[CH__COUNT]) {
  bw_child_info_t info[CH__COUNT];
  size_t n = 0;
  if (bw_sup_which_children(rt, root, info, CH__COUNT, &n) != 0 || n != CH__COUNT)
    return false;
  for (size_t i = 0; i < CH__COUNT; i++)
    out[i] = info[i].restarts;
  return true;
}

static void print_status(bw_runtime_t *rt, bw_pid_t root, uint64_t t_ms) {
  uint32_t rs[CH__COUNT] = {0};
  bw_bulkhead_stats_t pm;
  (void)child_restarts(rt, root, rs);
  bool have_pool = bw_bulkhead_stats(g_app.sink, &pm) == 0;
  say("t=%2llus produced %6llu stored %6llu dropped %5llu | breaker %-9s | sink busy %u/%u "
      "queued %u | restarts: aggregator %u, writer %u\n",
      (unsigned long long)(t_ms / 1000), (unsigned long long)atomic_load(&g_ledger.produced),
      (unsigned long long)atomic_load(&g_ledger.stored),
      (unsigned long long)ledger_dropped_total(),
      bw_breaker_state_name(bw_breaker_state(g_app.breaker)), have_pool ? pm.busy : 0,
      have_pool ? pm.workers : 0, have_pool ? pm.queued : 0, rs[CH_AGGREGATOR],
      atomic_load(&g_restart_events[CH_WRITER]));
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
    fprintf(stderr, "sensor_pipeline: bw_runtime_create: %s\n", bw_strerror(rc));
    return 1;
  }

  /* --- The ledger actor: outside the tree, it outlives every restart. --- */
  bw_pid_t ledger = BW_PID_NONE;
  rc = bw_spawn(rt, &ledger_behaviour, NULL, NULL, &ledger);
  if (rc == 0)
    rc = bw_dead_letter_subscribe(rt, ledger);
  if (rc == 0)
    rc = bw_event_subscribe(rt, ledger,
                            BW_EV_MASK(BW_EV_BREAKER_STATE) | BW_EV_MASK(BW_EV_CHILD_EXITED) |
                                BW_EV_MASK(BW_EV_CHILD_RESTARTED));

  /* --- The breaker: a handle now, its actor a child of the tree. --------- */
  bw_breaker_opts_t bo;
  bw_breaker_opts_init(&bo);
  bo.name = "sink";
  bo.failure_threshold = 5;             /* 5 failed writes in a row open it */
  bo.window = BW_BREAKER_WINDOW_NONE;   /* no rate window: consecutive failures only */
  bo.open_ms = 100;                     /* then half-open ... */
  bo.half_open_permits = 2;             /* ... 2 trial writes ... */
  bo.success_threshold = 2;             /* ... that must both succeed */
  bo.classify = classify_store;
  if (rc == 0)
    rc = bw_breaker_new(rt, &bo, &g_app.breaker);
  if (rc == 0)
    rc = bw_breaker_child_spec(g_app.breaker, "breaker", &pipeline_children[CH_BREAKER]);

  /* --- The sink pool: a handle too; the writer finds it by its name. ----- */
  if (rc == 0)
    rc = bw_bulkhead_new(rt, &sink_opts, &g_app.sink);
  if (rc == 0)
    rc = bw_bulkhead_child_spec(g_app.sink, "sink", &pipeline_children[CH_SINK]);
  pipeline_children[CH_SINK].name = "sink"; /* registered: the writer sends to it by name */

  /* --- Start the tree: children in order, each up before the next. ------- */
  bw_pid_t root = BW_PID_NONE;
  bw_sup_error_t err;
  if (rc == 0 && (rc = bw_supervisor_start(rt, &pipeline, &root, &err)) != 0)
    fprintf(stderr, "sensor_pipeline: start failed at %s: %s\n", err.child, err.message);
  if (rc != 0) {
    fprintf(stderr, "sensor_pipeline: setup: %s (%s)\n", bw_err_name(rc), bw_strerror(rc));
    bw_runtime_destroy(rt);
    return 1;
  }
  say("sensor_pipeline: %u sensors -> aggregator -> writer -> breaker -> sink (2 workers, "
      "queue 8), %u s\n",
      NSENSORS, duration_s);
  atomic_store(&g_producing, true);

  /* --- Run: inject the faults, print a status line per second. -----------
   * Faults at a quarter (aggregator crash) and half (sink outage) of the
   * run. The run ends when the time is up *and* both faults have had their
   * effect, so a slow machine stretches it rather than failing it. */
  const uint64_t t0 = bw_now_ms(rt), run_ms = (uint64_t)duration_s * 1000u;
  const uint64_t deadline = run_ms + 60000u;
  bool crash_injected = false, outage_injected = false;
  uint32_t rs[CH__COUNT] = {0};
  uint64_t next_status = 1000, t = 0;
  bw_breaker_stats_t bm = {0};
  for (;;) {
    sleep_ms(10);
    t = bw_now_ms(rt) - t0;
    if (!crash_injected && t >= run_ms / 4) {
      say("  >> fault: the aggregator will crash on its next reading\n");
      atomic_store(&g_crash_aggregator, true);
      crash_injected = true;
    }
    if (!outage_injected && t >= run_ms / 2) {
      say("  >> fault: sink outage, the next %d writes fail\n", OUTAGE_WRITES);
      atomic_store(&g_sink_fail_next, OUTAGE_WRITES);
      outage_injected = true;
    }
    if (t >= next_status) {
      print_status(rt, root, t);
      next_status += 1000;
    }
    (void)child_restarts(rt, root, rs);
    (void)bw_breaker_stats(g_app.breaker, &bm);
    bool effects = rs[CH_AGGREGATOR] >= 1 && outage_injected &&
                   atomic_load(&g_sink_fail_next) == 0 && bm.opens >= 1 &&
                   bw_breaker_state(g_app.breaker) == BW_BREAKER_CLOSED;
    if ((t >= run_ms && effects) || t >= deadline)
      break;
  }
  EXPECT(t < deadline); /* the faults had their effect in time */

  /* --- Drain: stop producing, wait until every reading is settled. ------ */
  atomic_store(&g_producing, false);
  say("  >> sensors stopped; draining\n");
  uint64_t produced = 0, stored = 0, dropped = 0;
  const uint64_t drain_until = bw_now_ms(rt) + 30000u;
  do {
    sleep_ms(10);
    produced = atomic_load(&g_ledger.produced);
    stored = atomic_load(&g_ledger.stored);
    dropped = ledger_dropped_total();
  } while (stored + dropped != produced && bw_now_ms(rt) < drain_until);

  /* --- Read what the tree says, then stop. ----------------------------- */
  EXPECT(child_restarts(rt, root, rs));
  (void)bw_breaker_flush(g_app.breaker, 5000);
  (void)bw_breaker_stats(g_app.breaker, &bm);
  EXPECT(bw_runtime_stop(rt) == 0);
  EXPECT(bw_breaker_destroy(g_app.breaker) == 0); /* its actor is gone with the tree */
  EXPECT(bw_bulkhead_destroy(g_app.sink) == 0);

  uint64_t in_flight = produced - stored - dropped; /* at stop, after the drain */
  say("\nreadings: produced %llu = stored %llu + dropped %llu + in flight at stop %llu\n",
      (unsigned long long)produced, (unsigned long long)stored, (unsigned long long)dropped,
      (unsigned long long)in_flight);
  say("dropped by reason:");
  for (int i = 0; i < DROP__COUNT; i++)
    say(" %s %llu", drop_name(i), (unsigned long long)atomic_load(&g_ledger.dropped[i]));
  say("\nrestarts (events): sensors %u, breaker %u, sink %u, aggregator %u, writer %u\n",
      atomic_load(&g_restart_events[CH_SENSORS]), atomic_load(&g_restart_events[CH_BREAKER]),
      atomic_load(&g_restart_events[CH_SINK]), atomic_load(&g_restart_events[CH_AGGREGATOR]),
      atomic_load(&g_restart_events[CH_WRITER]));
  say("breaker: opened %llu time(s), rejected %llu, failed %llu, succeeded %llu\n",
      (unsigned long long)bm.opens, (unsigned long long)bm.rejected,
      (unsigned long long)bm.failed, (unsigned long long)bm.successful);

  /* --- Self-check: invariants only, nothing that depends on timing. ---- */
  EXPECT(produced > 0 && stored > 0);
  EXPECT(stored + dropped == produced); /* nothing lost silently, nothing twice */
  EXPECT(rs[CH_AGGREGATOR] >= 1);       /* the crash was restarted ... */
  /* ... and, rest_for_one, what was started after it, not what before. */
  EXPECT(atomic_load(&g_restart_events[CH_WRITER]) >= 1);
  EXPECT(atomic_load(&g_restart_events[CH_SENSORS]) == 0);
  EXPECT(atomic_load(&g_restart_events[CH_BREAKER]) == 0);
  EXPECT(atomic_load(&g_restart_events[CH_SINK]) == 0);
  EXPECT(bm.opens >= 1);                /* the outage opened the breaker */
  EXPECT(atomic_load(&g_ledger.dropped[DROP_SINK_ERROR]) > 0);

  bw_runtime_destroy(rt);
  if (g_failures) {
    fprintf(stderr, "sensor_pipeline: FAILED: %d unexpected result(s)\n", g_failures);
    return 1;
  }
  printf("%ssensor_pipeline: ok: produced %llu = stored %llu + dropped %llu; aggregator "
         "restarted %u time(s), writer %u (rest_for_one); breaker opened %llu time(s)\n",
         g_quiet ? "" : "\n", (unsigned long long)produced, (unsigned long long)stored,
         (unsigned long long)dropped, rs[CH_AGGREGATOR], atomic_load(&g_restart_events[CH_WRITER]),
         (unsigned long long)bm.opens);
  return 0;
}
