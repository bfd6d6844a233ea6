/*
 * llm_gateway: agents answering prompts through a flaky language-model
 * service, kept up by supervision and protected by a resilience policy.
 *
 *   load generator --prompt--> agent-N --request--> client (policy executor)
 *   (an actor, N/s)            (4 actors)            fallback, deadline,
 *                                                    retry + jitter + budget,
 *                                                    breaker, rate limit,
 *                                                    attempt timeout
 *                                                         |
 *                                                         v
 *                                           llm-pool (bulkhead: connections
 *                                           on their own threads + overflow
 *                                           + a queue) --> simulated service
 *
 * The tree, declared as C data below (rest_for_one: each child depends on
 * those before it):
 *
 *   gateway (rest_for_one)
 *   ├── config        the settings; agents read them, so they start after it
 *   ├── metrics       the metrics reporter (/metrics)
 *   ├── connection    (rest_for_one) the model-service client:
 *   │   ├── breaker   the circuit breaker's actor
 *   │   ├── llm-pool  the connection pool (bulkhead)
 *   │   └── client    the policy executor, registered "llm-client"
 *   ├── agents        (one_for_one) agent-0 .. agent-3
 *   └── health        the health monitor (/health), last: nothing needs it
 *
 * The simulated service (a stand-in for a remote API, shared by the pool's
 * connections) has a latency distribution (10-90 ms, 4 % up to 400 ms more),
 * random errors ("500"), error bursts, a quota ("429" when called faster
 * than it allows), occasional hangs (no answer for 2 s), and an outage
 * window in which it fails every call ("503"). What a user sees, in the
 * default run (20 s): healthy traffic; an error burst that retries absorb;
 * an agent crash that its supervisor repairs; the outage: calls fail, the
 * breaker opens, the fallback answers from a "cache", half-open probes fail
 * and the breaker reopens; the service comes back, a probe succeeds, the
 * breaker closes, model answers resume.
 *
 *   ./llm_gateway                          20 s, a status line per second
 *   ./llm_gateway --duration 60 --outage-at 20 --outage-for 15
 *   ./llm_gateway --hang-rate 5 --error-rate 10 --slow
 *   ./llm_gateway --crash-agent-at 3       (off: --crash-agent-at -1)
 *   ./llm_gateway --rps 200                more load than the rate limit
 *   ./llm_gateway --port 9000              observer port (0 = any free one)
 *   ./llm_gateway --quiet --duration 3     only the summary line (ctest)
 *
 * Faults default to fractions of the run (outage from 35 % for 25 %, agent
 * crash at 20 %, error bursts at 15 % and 80 %), so a short run tells the
 * same story. Every prompt is accounted for: answered by the model,
 * answered by the fallback (by cause), or failed (by cause); the run checks
 * prompts = answered + failed + in flight, with nothing in flight after the
 * drain. Exit code 0 when the accounting balances and the faults had the
 * effects described, 1 otherwise, 2 on a bad command line. BW_TEST_SCALE=N
 * (sanitizer builds) divides the load by N and stretches timeouts N times.
 * Only the public header is used.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <bulwark/bulwark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* === Messages ============================================================== */

enum {
  PROMPT = 1,    /* load generator -> agent (request): struct prompt */
  GEN_TICK,      /* load generator: its own interval timer */
  LLM_COMPLETE,  /* agent -> client -> pool -> connection (request): struct llm_req */
  LLM_ANSWER,    /* a connection's answer: struct llm_answer */
  LLM_FALLBACK,  /* the fallback's answer: struct llm_answer (cause set) */
  AGENT_ANSWER,  /* agent -> load generator (reply type): struct agent_reply */
  AGENT_FAILED,  /* agent -> load generator (reply type): struct agent_reply, cause = FAIL_* */
};

/* The service's own status codes (user codes, below every BW_E code). */
#define LLM_E500 (-1500) /* internal error: worth a retry */
#define LLM_E503 (-1503) /* unavailable (the outage): worth a retry */
#define LLM_E429 (-1429) /* too many requests: the quota; worth a retry after a backoff */

struct prompt {
  uint64_t sent_ns; /* runtime clock, for the answer latency */
  uint32_t id;
  char text[60];
};

struct llm_req {
  uint32_t agent, prompt;
  char model[24];
  char text[96];
};

struct llm_answer {
  int32_t cause;   /* LLM_FALLBACK: the bw_policy_cause_t that ended the call */
  uint32_t tokens;
  char text[88];
};

struct agent_reply {
  uint64_t sent_ns;
  int32_t cause;   /* AGENT_ANSWER from the fallback: bw_policy_cause_t; AGENT_FAILED: FAIL_* */
  uint32_t tokens;
  char text[88];
};

_Static_assert(sizeof(struct llm_req) <= BW_BULKHEAD_PAYLOAD_MAX,
               "a model request must fit a bulkhead message job");
_Static_assert(sizeof(struct llm_answer) <= BW_MSG_INLINE_MAX, "answers are inline");
_Static_assert(sizeof(struct agent_reply) <= BW_MSG_INLINE_MAX, "replies are inline");

/* Why a prompt failed, as the load generator counts it. */
enum fail {
  FAIL_TIMEOUT = 0,  /* the attempt timeout, the deadline, or the pool's queue timeout */
  FAIL_MODEL_ERROR,  /* the service answered 500 / 503 on every attempt */
  FAIL_QUOTA,        /* the service answered 429 on every attempt */
  FAIL_POOL_FULL,    /* every connection busy and the pool's queue full */
  FAIL_CLIENT_DOWN,  /* the client was restarting (or exited with the call) */
  FAIL_AGENT_CRASH,  /* the agent crashed with the prompt */
  FAIL_NO_AGENT,     /* the agent was restarting: nobody to send to */
  FAIL_AGENT_BUSY,   /* the agent had AGENT_INFLIGHT prompts in flight */
  FAIL_OTHER,
  FAIL__COUNT
};

static const char *const fail_names[FAIL__COUNT] = {
    "timeout",     "model_error", "quota_429", "pool_full", "client_down",
    "agent_crash", "no_agent",    "agent_busy", "other"};

/* === Settings (the command line) =========================================== */

struct settings {
  char model[24];
  unsigned duration_s;
  unsigned rps;            /* prompts per second (divided by BW_TEST_SCALE) */
  uint64_t outage_at_ms, outage_for_ms; /* outage_for 0 = no outage */
  int64_t crash_at_ms;     /* < 0: no crash */
  uint32_t hang_bp;        /* hangs, basis points of calls (1/100 %) */
  uint32_t error_bp;       /* random 500s, basis points */
  bool bursts;             /* error bursts at 15 % and 80 % of the run */
  bool slow;               /* latencies x4 */
  int port;                /* observer; -1 = default */
  unsigned scale;          /* BW_TEST_SCALE */
  /* derived */
  uint64_t attempt_timeout_ms, deadline_ms, breaker_open_ms;
  uint64_t limiter_rate, quota_rate;
};

#define NAGENTS 4u
#define AGENT_INFLIGHT 64u /* prompts in flight per agent */
#define POOL_WORKERS 6u
#define POOL_OVERFLOW 4u
#define POOL_QUEUE 24u
#define POOL_QUEUE_MS 300u
#define HANG_MS 2000u    /* a hung call answers after this long (too late) */
#define BURST_MS 400u    /* an error burst lasts this long ... */
#define BURST_BP 3000u   /* ... and fails 30 % more of the calls */
#define GEN_TICK_MS 10u  /* the load generator's period */

static struct settings g_set;
static bool g_quiet;

/* Set by main before the tree starts; read by actors (spawning them orders
 * these writes before their reads). */
static uint64_t g_t0_ms; /* the runtime clock at the start of the run */

/* Switches main flips; the actors read them. */
static atomic_bool g_producing;  /* the load generator sends prompts */
static atomic_bool g_crash_agent; /* the next agent to take a prompt crashes */
static atomic_bool g_stopping;    /* cuts the service's sleeps short at exit */

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

/* A tiny PRNG per actor (xorshift64): no shared state between connections. */
static uint64_t rnd(uint64_t *s) {
  uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

/* === The simulated model service =========================================== */

/*
 * A stand-in for a remote API: what a connection's blocking call reaches.
 * It is shared by every connection, as a real service is, so its counters
 * and its quota are atomic. It runs on the pool's dedicated threads, where
 * sleeping is what a blocking network call does.
 */
static struct {
  bw_ratelimit_t quota; /* the service's own rate limit: beyond it, 429 */
  atomic_uint_fast64_t calls, ok, e500, e503, e429, hangs;
} g_svc;

/* Milliseconds since the run started, on the runtime's clock. */
static uint64_t run_ms(bw_runtime_t *rt) {
  return bw_now_ms(rt) - g_t0_ms;
}

static bool in_outage(uint64_t t) {
  return g_set.outage_for_ms > 0 && t >= g_set.outage_at_ms &&
         t < g_set.outage_at_ms + g_set.outage_for_ms;
}

static bool in_burst(uint64_t t) {
  if (!g_set.bursts)
    return false;
  uint64_t run = (uint64_t)g_set.duration_s * 1000u;
  uint64_t b1 = run * 15 / 100, b2 = run * 80 / 100;
  return (t >= b1 && t < b1 + BURST_MS) || (t >= b2 && t < b2 + BURST_MS);
}

/* Sleeps ms, in slices, so that a stopping program is not held up by a
 * call that would hang for seconds. */
static void nap(unsigned ms) {
  while (ms > 0 && !atomic_load(&g_stopping)) {
    unsigned slice = ms < 20u ? ms : 20u;
    sleep_ms(slice);
    ms -= slice;
  }
}

/* One completion call. Returns 0 with *out filled, or the service's error. */
static int service_complete(bw_runtime_t *rt, uint64_t *rng, const struct llm_req *rq,
                            struct llm_answer *out) {
  atomic_fetch_add(&g_svc.calls, 1);
  uint64_t t = run_ms(rt);
  if (in_outage(t)) {
    nap(5u + (unsigned)(rnd(rng) % 15u)); /* fails fast: the load balancer answers */
    atomic_fetch_add(&g_svc.e503, 1);
    return LLM_E503;
  }
  if (bw_ratelimit_try_acquire(&g_svc.quota, NULL) != 0) {
    nap(1);
    atomic_fetch_add(&g_svc.e429, 1);
    return LLM_E429;
  }
  if (rnd(rng) % 10000u < g_set.hang_bp) {
    /* A hang: the caller's attempt timeout fires long before this returns;
     * the answer, when it comes, is a late reply (a dead letter). The
     * connection is busy meanwhile: the pool starts overflow workers. */
    atomic_fetch_add(&g_svc.hangs, 1);
    nap(HANG_MS);
  }
  /* Latency: a triangle 10-90 ms, and a tail: 4 % take 100-400 ms more. */
  unsigned ms = 10u + (unsigned)(rnd(rng) % 41u) + (unsigned)(rnd(rng) % 41u);
  if (rnd(rng) % 100u < 4u)
    ms += 100u + (unsigned)(rnd(rng) % 301u);
  if (g_set.slow)
    ms *= 4u;
  nap(ms);
  uint32_t err_bp = g_set.error_bp + (in_burst(run_ms(rt)) ? BURST_BP : 0u);
  if (rnd(rng) % 10000u < err_bp) {
    atomic_fetch_add(&g_svc.e500, 1);
    return LLM_E500;
  }
  atomic_fetch_add(&g_svc.ok, 1);
  memset(out, 0, sizeof *out);
  out->tokens = 20u + (uint32_t)(rnd(rng) % 200u);
  snprintf(out->text, sizeof out->text, "[%s] answer to prompt #%u from agent-%u (%u tokens)",
           rq->model, rq->prompt, rq->agent, out->tokens);
  return 0;
}

/* === Tree child 1: config ================================================== */

/*
 * The configuration actor: checks the settings and publishes them for the
 * actors after it (agents read the model name from it at init). Declared
 * first: when it restarts (a reload), rest_for_one restarts everything that
 * read it. It answers the health monitor's checks.
 */
static _Atomic(const struct settings *) g_config; /* NULL while config is down */

static int config_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  (void)state;
  const struct settings *s = arg;
  if (s->model[0] == '\0' || s->attempt_timeout_ms == 0 || s->deadline_ms == 0)
    return BW_EINVAL; /* the tree fails to start, naming "config" */
  atomic_store(&g_config, s);
  return 0;
}

static int config_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)state;
  if (msg->type == BW_HEALTH_MSG_CHECK && (msg->flags & BW_MSGF_REQUEST))
    (void)bw_health_answer(ctx, msg, BW_HEALTH_HEALTHY, g_set.model);
  return BW_CONTINUE;
}

static void config_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)ctx;
  (void)state;
  (void)reason;
  atomic_store(&g_config, NULL);
}

static const bw_behaviour_t config_behaviour = {
    .name = "config",
    .init = config_init,
    .handle = config_handle,
    .terminate = config_terminate,
};

/* === Tree child 3: connection (breaker, llm-pool, client) ================== */

/* A connection: a pool worker that talks to the service. It runs on a
 * thread of its own (the pool's dedicated_threads), so its blocking call
 * never holds up a scheduler thread. */
struct conn {
  uint64_t rng;
};

static int conn_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)arg;
  struct conn *c = state;
  c->rng = bw_self(ctx) * 0x9E3779B97F4A7C15ull | 1u;
  return 0;
}

static int conn_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct conn *c = state;
  if (msg->type != LLM_COMPLETE || !(msg->flags & BW_MSGF_REQUEST))
    return BW_CONTINUE;
  struct llm_req rq;
  if (msg->len != sizeof rq) {
    (void)bw_reply(ctx, msg, BW_EINVAL, LLM_ANSWER, NULL, 0);
    return BW_CONTINUE;
  }
  memcpy(&rq, msg->data, sizeof rq);
  struct llm_answer a;
  int status = service_complete(bw_ctx_runtime(ctx), &c->rng, &rq, &a);
  if (status == 0)
    (void)bw_reply(ctx, msg, 0, LLM_ANSWER, &a, sizeof a);
  else
    (void)bw_reply(ctx, msg, status, LLM_ANSWER, NULL, 0);
  return BW_CONTINUE;
}

static const bw_behaviour_t conn_behaviour = {
    .name = "llm-conn",
    .state_size = sizeof(struct conn),
    .init = conn_init,
    .handle = conn_handle,
};

static const bw_bulkhead_opts_t pool_opts = {
    .name = "llm-pool",
    .workers = POOL_WORKERS,          /* 6 calls at once ... */
    .max_overflow = POOL_OVERFLOW,    /* ... 4 more while some are stuck ... */
    .queue_capacity = POOL_QUEUE,     /* ... 24 may wait ... */
    .queue_timeout_ms = POOL_QUEUE_MS, /* ... this long; the rest is refused */
    .worker = &conn_behaviour,
    .dedicated_threads = true,
};

/* For the breaker: what says something about the service's health. */
static int classify_call(int status, void *arg) {
  (void)arg;
  switch (status) {
  case 0:
    return BW_BREAKER_SUCCESS;
  case BW_ECANCELED:      /* refused by our own rate limiter after the permit */
  case BW_EBULKHEAD_FULL: /* our own pool is full: the service may be fine */
  case LLM_E429:          /* the service is up; we were too fast */
    return BW_BREAKER_IGNORED;
  default:
    return BW_BREAKER_FAILURE;
  }
}

/* For the retry: what a second attempt might fix. An open breaker, a full
 * pool or an exhausted budget are final: retrying them is the storm. */
static bool retryable(int status, void *arg) {
  (void)arg;
  return status == LLM_E500 || status == LLM_E503 || status == LLM_E429 ||
         status == BW_ETIMEDOUT || status == BW_ENOPROC || status == BW_ENOTFOUND;
}

/* The fallback: when the policy refuses a call (breaker open, no rate
 * token, no retry budget), answer from a "cache" rather than fail. Real
 * errors (timeouts, the service's errors after the retries) are not
 * covered (fallback_on): the agent reports them. */
static int fallback(int status, int cause, const bw_msg_t *req, bw_policy_answer_t *out,
                    void *arg) {
  (void)status;
  (void)arg;
  struct llm_req rq;
  if (req->len != sizeof rq)
    return -1; /* decline: the requester gets the error */
  memcpy(&rq, req->data, sizeof rq);
  struct llm_answer a = {.cause = cause, .tokens = 0};
  snprintf(a.text, sizeof a.text, "(cached) The assistant is busy; a short answer to #%u.",
           rq.prompt);
  out->status = 0;
  out->type = LLM_FALLBACK;
  out->len = sizeof a;
  memcpy(out->data, &a, sizeof a);
  return 0;
}

enum { CONN_BREAKER, CONN_POOL, CONN_CLIENT, CONN__COUNT };
static bw_child_spec_t connection_children[CONN__COUNT] = {
    [CONN_BREAKER] = {.id = "breaker"}, /* filled in main: bw_breaker_child_spec */
    [CONN_POOL] = {.id = "llm-pool", .behaviour = &bw_bulkhead_behaviour,
                   .arg = (void *)&pool_opts, .name = "llm-pool"},
    [CONN_CLIENT] = {.id = "client", .behaviour = &bw_policy_behaviour, /* arg: the policy */
                     .name = "llm-client"},
};
static const bw_sup_spec_t connection_sup = {
    .name = "connection",
    .strategy = BW_REST_FOR_ONE, /* the client needs the pool, the pool the breaker */
    .intensity = 10,
    .period_ms = 5000,
    .children = connection_children,
    .nchildren = CONN__COUNT,
};

/* === Tree child 4: agents ================================================== */

/*
 * An agent takes a prompt (a request from the load generator), adds what
 * it knows (the model, from config), asks the client, and answers the
 * prompt when the client answers: it keeps each prompt's request to reply
 * to later. Every prompt it accepted gets exactly one reply: the client
 * always answers (its deadline bounds the call; if it exits, the runtime
 * answers BW_ENOPROC). If the agent itself crashes, the runtime answers the
 * prompts it held with BW_ENOPROC (requests monitor their target).
 */
struct agent_slot {
  uint64_t ref;      /* the client request's ref; 0 = free */
  bw_msg_t prompt;   /* the prompt's request (data cleared): bw_reply needs it */
  uint64_t sent_ns;
};

struct agent {
  uint32_t id;
  uint32_t inflight;
  const struct settings *cfg;
  struct agent_slot s[AGENT_INFLIGHT];
};

static int agent_init(bw_ctx_t *ctx, void *state, void *arg) {
  (void)ctx;
  struct agent *a = state;
  a->id = *(const uint32_t *)arg;
  a->cfg = atomic_load(&g_config);
  return a->cfg != NULL ? 0 : BW_ESTATE; /* config starts first: this never fails */
}

static void agent_reply(bw_ctx_t *ctx, const bw_msg_t *prompt, int status, uint32_t type,
                        uint64_t sent_ns, int cause, const struct llm_answer *ans) {
  struct agent_reply r = {.sent_ns = sent_ns, .cause = cause};
  if (ans != NULL) {
    r.tokens = ans->tokens;
    memcpy(r.text, ans->text, sizeof r.text);
  }
  (void)bw_reply(ctx, prompt, status, type, &r, sizeof r);
}

static int fail_of(int status) {
  switch (status) {
  case BW_ETIMEDOUT: return FAIL_TIMEOUT;
  case LLM_E500:
  case LLM_E503: return FAIL_MODEL_ERROR;
  case LLM_E429: return FAIL_QUOTA;
  case BW_EBULKHEAD_FULL: return FAIL_POOL_FULL;
  case BW_ENOPROC:
  case BW_ENOTFOUND: return FAIL_CLIENT_DOWN;
  default: return FAIL_OTHER;
  }
}

static void agent_prompt(bw_ctx_t *ctx, struct agent *a, const bw_msg_t *msg) {
  struct prompt p;
  if (msg->len != sizeof p) {
    (void)bw_reply(ctx, msg, BW_EINVAL, AGENT_FAILED, NULL, 0);
    return;
  }
  memcpy(&p, msg->data, sizeof p);
  /* Fault injection: a bug (say, a tool's output it cannot parse). bw_fail
   * unwinds at once; this prompt and every other it held are answered
   * BW_ENOPROC by the runtime, and its supervisor starts a fresh agent. */
  if (atomic_exchange(&g_crash_agent, false))
    bw_fail(ctx, BW_ESTATE, "agent-%u: injected crash, %u prompt(s) in flight", a->id,
            a->inflight + 1);
  if (a->inflight == AGENT_INFLIGHT) {
    agent_reply(ctx, msg, BW_ELIMIT, AGENT_FAILED, p.sent_ns, FAIL_AGENT_BUSY, NULL);
    return;
  }
  struct llm_req rq = {.agent = a->id, .prompt = p.id};
  memcpy(rq.model, a->cfg->model, sizeof rq.model);
  snprintf(rq.text, sizeof rq.text, "You are agent-%u. %s", a->id, p.text);
  bw_pid_t client = BW_PID_NONE;
  uint64_t ref = 0;
  int rc = bw_whereis(bw_ctx_runtime(ctx), "llm-client", &client);
  /* No deadline of our own: the policy's bounds the call and it always
   * answers; one of ours could let a late answer cross our own timeout. */
  if (rc == 0)
    rc = bw_request(ctx, client, LLM_COMPLETE, &rq, sizeof rq, 0, &ref);
  if (rc != 0) {
    agent_reply(ctx, msg, rc, AGENT_FAILED, p.sent_ns, fail_of(rc), NULL);
    return;
  }
  for (uint32_t i = 0; i < AGENT_INFLIGHT; i++) {
    struct agent_slot *s = &a->s[i];
    if (s->ref != 0)
      continue;
    s->ref = ref;
    s->prompt = *msg;
    s->prompt.data = NULL;
    s->prompt.len = 0;
    s->sent_ns = p.sent_ns;
    a->inflight++;
    return;
  }
}

/* The client's answer: pass it on to the prompt's sender. */
static void agent_answer(bw_ctx_t *ctx, struct agent *a, const bw_msg_t *rep) {
  for (uint32_t i = 0; i < AGENT_INFLIGHT; i++) {
    struct agent_slot *s = &a->s[i];
    if (s->ref != rep->ref || s->ref == 0)
      continue;
    struct llm_answer ans;
    bool have = rep->len == sizeof ans;
    if (have)
      memcpy(&ans, rep->data, sizeof ans);
    if (rep->status == 0 && have)
      agent_reply(ctx, &s->prompt, 0, AGENT_ANSWER, s->sent_ns,
                  rep->type == LLM_FALLBACK ? ans.cause : BW_POLICY_CAUSE_NONE, &ans);
    else
      agent_reply(ctx, &s->prompt, rep->status != 0 ? rep->status : BW_ESTATE, AGENT_FAILED,
                  s->sent_ns, rep->status != 0 ? fail_of(rep->status) : FAIL_OTHER, NULL);
    s->ref = 0;
    a->inflight--;
    return;
  }
}

static int agent_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct agent *a = state;
  if (msg->flags & BW_MSGF_REPLY) {
    agent_answer(ctx, a, msg);
  } else if (msg->type == PROMPT && (msg->flags & BW_MSGF_REQUEST)) {
    agent_prompt(ctx, a, msg);
  } else if (msg->type == BW_HEALTH_MSG_CHECK && (msg->flags & BW_MSGF_REQUEST)) {
    char why[48];
    snprintf(why, sizeof why, "%u prompts in flight", a->inflight);
    (void)bw_health_answer(ctx, msg,
                           a->inflight > AGENT_INFLIGHT * 3 / 4 ? BW_HEALTH_DEGRADED
                                                                : BW_HEALTH_HEALTHY,
                           why);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t agent_behaviour = {
    .name = "agent",
    .state_size = sizeof(struct agent),
    .init = agent_init,
    .handle = agent_handle,
};

static const uint32_t agent_ids[NAGENTS] = {0, 1, 2, 3};
#define AGENT(i)                                                                             \
  {.id = "agent-" #i, .behaviour = &agent_behaviour, .arg = (void *)&agent_ids[i],          \
   .name = "agent-" #i}
static const bw_child_spec_t agent_specs[NAGENTS] = {AGENT(0), AGENT(1), AGENT(2), AGENT(3)};
static const bw_sup_spec_t agents_sup = {
    .name = "agents",
    .strategy = BW_ONE_FOR_ONE, /* agents are independent of one another */
    .intensity = 10,
    .period_ms = 5000,
    .children = agent_specs,
    .nchildren = NAGENTS,
};

/* === The root ============================================================== */

enum { CH_CONFIG, CH_METRICS, CH_CONNECTION, CH_AGENTS, CH_HEALTH, CH__COUNT };
static bw_child_spec_t gateway_children[CH__COUNT] = {
    [CH_CONFIG] = {.id = "config", .behaviour = &config_behaviour, .arg = &g_set,
                   .name = "config"},
    [CH_METRICS] = {.id = "metrics"}, /* filled in main: bw_metrics_child_spec */
    [CH_CONNECTION] = {.id = "connection", .supervisor = &connection_sup,
                       .type = BW_SUPERVISOR},
    [CH_AGENTS] = {.id = "agents", .supervisor = &agents_sup, .type = BW_SUPERVISOR},
    [CH_HEALTH] = {.id = "health"}, /* filled in main: bw_health_child_spec */
};
static const bw_sup_spec_t gateway = {
    .name = "gateway",
    .strategy = BW_REST_FOR_ONE,
    .intensity = 10,
    .period_ms = 5000,
    .children = gateway_children,
    .nchildren = CH__COUNT,
};

/* === The load generator (outside the tree) ================================= */

/* Where every prompt ended up: bumped once per prompt by the generator,
 * the only actor that sends prompts and gets their replies. */
static struct {
  atomic_uint_fast64_t prompts;  /* sent (or tried: no_agent counts too) */
  atomic_uint_fast64_t model;    /* answered by the model */
  atomic_uint_fast64_t model_after_outage; /* of which, received after the outage */
  atomic_uint_fast64_t fallback[BW_POLICY_CAUSE__COUNT]; /* answered by the fallback, by cause */
  atomic_uint_fast64_t failed[FAIL__COUNT];
} g_led;

static uint64_t fallback_total(void) {
  uint64_t n = 0;
  for (int i = 0; i < BW_POLICY_CAUSE__COUNT; i++)
    n += atomic_load(&g_led.fallback[i]);
  return n;
}

static uint64_t failed_total(void) {
  uint64_t n = 0;
  for (int i = 0; i < FAIL__COUNT; i++)
    n += atomic_load(&g_led.failed[i]);
  return n;
}

static void led_fail(int why) {
  atomic_fetch_add(&g_led.failed[why], 1);
}

struct gen_arg {
  bw_counter_t *model, *fallback, *failed; /* the metrics' counters */
  bw_histogram_t *latency;
};

struct generator {
  const struct gen_arg *m;
  bw_timer_t tick;
  uint32_t next_id, next_agent;
  uint64_t per_mille; /* prompts owed, in thousandths */
};

static int gen_init(bw_ctx_t *ctx, void *state, void *arg) {
  struct generator *g = state;
  g->m = arg;
  return bw_send_interval(bw_ctx_runtime(ctx), bw_self(ctx), GEN_TICK_MS, GEN_TICK, NULL, 0,
                          &g->tick);
}

static const char *const topics[] = {
    "Summarise the incident report.", "Draft a reply to the customer.",
    "Explain the stack trace.",       "Translate the release notes.",
    "Classify this support ticket.",  "Suggest a name for the service.",
};

static void gen_send(bw_ctx_t *ctx, struct generator *g) {
  bw_runtime_t *rt = bw_ctx_runtime(ctx);
  char name[16];
  snprintf(name, sizeof name, "agent-%u", g->next_agent);
  g->next_agent = (g->next_agent + 1) % NAGENTS;
  struct prompt p = {.sent_ns = bw_now_ns(rt), .id = ++g->next_id};
  snprintf(p.text, sizeof p.text, "%s", topics[p.id % (sizeof topics / sizeof topics[0])]);
  atomic_fetch_add(&g_led.prompts, 1);
  bw_pid_t to = BW_PID_NONE;
  uint64_t ref;
  /* By name: an agent's pid changes when it is restarted, and while it
   * restarts the name is free: nobody to send to. No deadline: the agent
   * always answers, or the runtime does for it. */
  int rc = bw_whereis(rt, name, &to);
  if (rc == 0)
    rc = bw_request(ctx, to, PROMPT, &p, sizeof p, 0, &ref);
  if (rc != 0) { /* nothing queued: settled here */
    led_fail(FAIL_NO_AGENT);
    (void)bw_counter_inc(g->m->failed);
  }
}

static void gen_settle(struct generator *g, bw_runtime_t *rt, const bw_msg_t *rep) {
  struct agent_reply r;
  if (rep->len != sizeof r) {
    /* No payload: the runtime's BW_ENOPROC, the agent exited with it. */
    led_fail(rep->status == BW_ENOPROC ? FAIL_AGENT_CRASH : FAIL_OTHER);
    (void)bw_counter_inc(g->m->failed);
    return;
  }
  memcpy(&r, rep->data, sizeof r);
  if (rep->status == 0 && rep->type == AGENT_ANSWER) {
    if (r.cause == BW_POLICY_CAUSE_NONE) {
      atomic_fetch_add(&g_led.model, 1);
      if (g_set.outage_for_ms > 0 && run_ms(rt) >= g_set.outage_at_ms + g_set.outage_for_ms)
        atomic_fetch_add(&g_led.model_after_outage, 1);
      (void)bw_counter_inc(g->m->model);
      (void)bw_histogram_record(g->m->latency, bw_now_ns(rt) - r.sent_ns);
    } else {
      atomic_fetch_add(&g_led.fallback[r.cause > 0 && r.cause < BW_POLICY_CAUSE__COUNT
                                            ? r.cause
                                            : BW_POLICY_CAUSE_NONE],
                       1);
      (void)bw_counter_inc(g->m->fallback);
    }
  } else {
    led_fail(r.cause >= 0 && r.cause < FAIL__COUNT ? r.cause : FAIL_OTHER);
    (void)bw_counter_inc(g->m->failed);
  }
}

static int gen_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct generator *g = state;
  if (msg->flags & BW_MSGF_REPLY) {
    gen_settle(g, bw_ctx_runtime(ctx), msg);
    return BW_CONTINUE;
  }
  if (msg->type != GEN_TICK || !atomic_load(&g_producing))
    return BW_CONTINUE;
  /* rps per second at GEN_TICK_MS ticks: rps * tick / 1000 prompts a tick,
   * the fraction carried over. */
  unsigned rps = g_set.rps / g_set.scale;
  g->per_mille += (uint64_t)(rps > 5u ? rps : 5u) * GEN_TICK_MS;
  for (; g->per_mille >= 1000u; g->per_mille -= 1000u)
    gen_send(ctx, g);
  return BW_CONTINUE;
}

static void gen_terminate(bw_ctx_t *ctx, void *state, const bw_reason_t *reason) {
  (void)reason;
  struct generator *g = state;
  (void)bw_timer_cancel(bw_ctx_runtime(ctx), g->tick);
}

static const bw_behaviour_t generator_behaviour = {
    .name = "load-generator",
    .state_size = sizeof(struct generator),
    .init = gen_init,
    .handle = gen_handle,
    .terminate = gen_terminate,
};

/* === The event log (outside the tree) ====================================== */

/* Counts and prints what supervision, the breaker and the health monitor
 * report on the event bus; main reads the counts. */
static struct {
  atomic_uint restarts;        /* BW_EV_CHILD_RESTARTED, anywhere in the tree */
  atomic_uint agent_restarts;  /* of which, agents */
  atomic_uint crashes;
  atomic_uint opens_in_outage; /* breaker -> open during the outage (see below) */
  atomic_bool closed_after_outage; /* breaker -> closed after the outage ended */
} g_ev;

static int events_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  if (msg->type != BW_MSG_EVENT || msg->len < sizeof(bw_event_t))
    return BW_CONTINUE;
  bw_event_t ev;
  memcpy(&ev, msg->data, sizeof ev);
  uint64_t t = ev.time_ns / 1000000u - g_t0_ms; /* run time, ms */
  switch (ev.type) {
  case BW_EV_BREAKER_STATE:
    say("  [breaker] %s: %s -> %s\n", ev.source_name, bw_breaker_state_name((int)ev.a),
        bw_breaker_state_name((int)ev.b));
    /* Opened by the outage: while it lasts, or just after it, by failures
     * reported late (an attempt that timed out, at most a deadline). */
    if (g_set.outage_for_ms > 0 && ev.b == BW_BREAKER_OPEN && t >= g_set.outage_at_ms &&
        t < g_set.outage_at_ms + g_set.outage_for_ms + g_set.deadline_ms)
      atomic_fetch_add(&g_ev.opens_in_outage, 1);
    if (g_set.outage_for_ms > 0 && ev.b == BW_BREAKER_CLOSED &&
        t >= g_set.outage_at_ms + g_set.outage_for_ms)
      atomic_store(&g_ev.closed_after_outage, true);
    break;
  case BW_EV_CHILD_EXITED:
    if (ev.reason_kind == BW_REASON_CRASH || ev.reason_kind == BW_REASON_KILLED) {
      atomic_fetch_add(&g_ev.crashes, 1);
      say("  [supervisor] %s/%s crashed: %s\n", ev.source_name, ev.subject_id, ev.text);
    }
    break;
  case BW_EV_CHILD_RESTARTED:
    atomic_fetch_add(&g_ev.restarts, 1);
    if (strcmp(ev.source_name, "agents") == 0)
      atomic_fetch_add(&g_ev.agent_restarts, 1);
    say("  [supervisor] %s/%s restarted (restart #%lld)\n", ev.source_name, ev.subject_id,
        (long long)ev.a);
    break;
  case BW_EV_SUP_ESCALATED:
    say("  [supervisor] %s gave up: %s\n", ev.source_name, ev.text);
    break;
  case BW_EV_HEALTH_CHANGED:
    say("  [health] %s -> %s\n", bw_health_status_name((int)ev.a),
        bw_health_status_name((int)ev.b));
    break;
  default:
    break;
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t events_behaviour = {.name = "event-log", .handle = events_handle};

/* === Status, observer check, main ========================================== */

static int g_failures;

#define EXPECT(cond)                                                                         \
  ((cond) ? true                                                                             \
          : (fprintf(stderr, "llm_gateway: FAILED at %s:%d: %s\n", __FILE__, __LINE__, #cond), \
             g_failures++, false))

/* Workers running / workers declared, walking the live tree. */
static void count_tree(bw_runtime_t *rt, bw_pid_t sup, unsigned *up, unsigned *all, int depth) {
  bw_child_info_t info[8];
  size_t n = 0;
  if (depth > 4 || bw_sup_which_children(rt, sup, info, 8, &n) != 0)
    return;
  for (size_t i = 0; i < n && i < 8; i++) {
    if (info[i].type == BW_SUPERVISOR && info[i].pid != BW_PID_NONE) {
      count_tree(rt, info[i].pid, up, all, depth + 1);
      continue;
    }
    (*all)++;
    if (info[i].state == BW_CHILD_RUNNING)
      (*up)++;
  }
}

static const char *phase_name(uint64_t t, bw_breaker_t *br) {
  if (in_outage(t))
    return "OUTAGE";
  if (in_burst(t))
    return "err-burst";
  if (g_set.outage_for_ms > 0 && t >= g_set.outage_at_ms + g_set.outage_for_ms &&
      !atomic_load(&g_ev.closed_after_outage) && bw_breaker_state(br) != BW_BREAKER_CLOSED)
    return "recovering";
  return "healthy";
}

static void print_status(bw_runtime_t *rt, bw_pid_t root, bw_breaker_t *br, bw_policy_t *pol,
                         bw_health_t *h, uint64_t t) {
  unsigned up = 0, all = 0;
  count_tree(rt, root, &up, &all, 0);
  bw_breaker_metrics_t bm;
  (void)bw_breaker_metrics(br, &bm);
  bw_policy_metrics_t pm;
  (void)bw_policy_metrics(pol, &pm);
  bw_bulkhead_metrics_t pool = {0};
  bw_pid_t pool_pid;
  if (bw_whereis(rt, "llm-pool", &pool_pid) != 0 ||
      bw_bulkhead_metrics(rt, pool_pid, &pool) != 0)
    memset(&pool, 0, sizeof pool);
  uint64_t prompts = atomic_load(&g_led.prompts), model = atomic_load(&g_led.model);
  uint64_t fb = fallback_total(), failed = failed_total();
  char causes[160] = "";
  size_t off = 0;
  for (int i = 0; i < FAIL__COUNT && off < sizeof causes; i++) {
    uint64_t n = atomic_load(&g_led.failed[i]);
    if (n > 0)
      off += (size_t)snprintf(causes + off, sizeof causes - off, "%s%s %llu", off ? ", " : " (",
                              fail_names[i], (unsigned long long)n);
  }
  if (off > 0 && off < sizeof causes)
    snprintf(causes + off, sizeof causes - off, ")");
  say("t=%2llus %-11s| tree %u/%u up, restarts %u | breaker %-9s | pool %u/%u busy, %u queued "
      "| prompts %llu: model %llu, fallback %llu, failed %llu%s, in flight %llu | retries "
      "%llu | health %s\n",
      (unsigned long long)(t / 1000), phase_name(t, br), up, all,
      atomic_load(&g_ev.restarts), bw_breaker_state_name((int)bw_breaker_state(br)),
      pool.busy, pool.workers + pool.overflow, pool.queued, (unsigned long long)prompts,
      (unsigned long long)model, (unsigned long long)fb, (unsigned long long)failed, causes,
      (unsigned long long)(prompts - model - fb - failed), (unsigned long long)pm.retries,
      bw_health_status_name(bw_health_status(h)));
}

/* A GET to our own observer (for the self-check): the HTTP status code, or
 * -1. At most 5 s. */
static int http_get(uint16_t port, const char *path, char *body, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct timeval tv = {.tv_sec = 5};
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  char req[128];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
  size_t got = 0;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      send(fd, req, (size_t)n, MSG_NOSIGNAL) == n) {
    ssize_t r;
    while (got + 1 < cap && (r = read(fd, body + got, cap - 1 - got)) > 0)
      got += (size_t)r;
  }
  close(fd);
  body[got] = '\0';
  int code = -1;
  if (sscanf(body, "HTTP/%*d.%*d %d", &code) != 1)
    code = -1;
  return code;
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--duration S] [--rps N] [--outage-at S] [--outage-for S]\n"
          "          [--crash-agent-at S] [--hang-rate PCT] [--error-rate PCT] [--slow]\n"
          "          [--no-bursts] [--port N] [--quiet]\n"
          "  S: seconds (decimals allowed); PCT: percent of calls; --outage-for 0 and\n"
          "  --crash-agent-at -1 turn those faults off; --port 0: any free port\n",
          argv0);
  return 2;
}

/* Parses a number into *out; false if it is not one (or out of [lo, hi]). */
static bool num(const char *s, double lo, double hi, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= lo && v <= hi))
    return false;
  *out = v;
  return true;
}

static int parse_args(int argc, char **argv) {
  double v, outage_at = -1, outage_for = -1, crash_at = -2;
  g_set.duration_s = 20;
  g_set.rps = 50;
  g_set.hang_bp = 100;  /* 1 % */
  g_set.error_bp = 200; /* 2 % */
  g_set.bursts = true;
  g_set.port = -1;
  snprintf(g_set.model, sizeof g_set.model, "sim-llm-7b");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      g_quiet = true;
      continue;
    }
    if (strcmp(a, "--slow") == 0) {
      g_set.slow = true;
      continue;
    }
    if (strcmp(a, "--no-bursts") == 0) {
      g_set.bursts = false;
      continue;
    }
    if (val == NULL)
      return usage(argv[0]);
    i++;
    if (strcmp(a, "--duration") == 0 && num(val, 1, 86400, &v))
      g_set.duration_s = (unsigned)v;
    else if (strcmp(a, "--rps") == 0 && num(val, 1, 100000, &v))
      g_set.rps = (unsigned)v;
    else if (strcmp(a, "--outage-at") == 0 && num(val, 0, 86400, &v))
      outage_at = v;
    else if (strcmp(a, "--outage-for") == 0 && num(val, 0, 86400, &v))
      outage_for = v;
    else if (strcmp(a, "--crash-agent-at") == 0 && num(val, -1e9, 86400, &v))
      crash_at = v < 0 ? -1 : v;
    else if (strcmp(a, "--hang-rate") == 0 && num(val, 0, 100, &v))
      g_set.hang_bp = (uint32_t)(v * 100.0 + 0.5);
    else if (strcmp(a, "--error-rate") == 0 && num(val, 0, 100, &v))
      g_set.error_bp = (uint32_t)(v * 100.0 + 0.5);
    else if (strcmp(a, "--port") == 0 && num(val, 0, 65535, &v))
      g_set.port = (int)v;
    else
      return usage(argv[0]);
  }
  /* Faults default to fractions of the run, so a short run shows the same. */
  uint64_t run = (uint64_t)g_set.duration_s * 1000u;
  g_set.outage_at_ms = outage_at >= 0 ? (uint64_t)(outage_at * 1000.0) : run * 35 / 100;
  g_set.outage_for_ms = outage_for >= 0 ? (uint64_t)(outage_for * 1000.0) : run * 25 / 100;
  g_set.crash_at_ms = crash_at >= -1 ? (crash_at < 0 ? -1 : (int64_t)(crash_at * 1000.0))
                                     : (int64_t)(run * 20 / 100);
  const char *scale = getenv("BW_TEST_SCALE");
  g_set.scale = scale != NULL && atoi(scale) > 1 ? (unsigned)atoi(scale) : 1u;
  if (g_set.port < 0)
    g_set.port = g_quiet ? 0 : 8080;
  /* Derived: timeouts stretch with the scale (sanitizers are slow), rates
   * shrink with the load. Our limiter stays under the service's quota. */
  g_set.attempt_timeout_ms = 400u * g_set.scale;
  g_set.deadline_ms = 2000u * g_set.scale;
  uint64_t open = g_set.outage_for_ms / 5;
  g_set.breaker_open_ms = open < 100 ? 100 : open > 1000 ? 1000 : open;
  /* The service's quota is 60/s; ours is set from its documentation, 80/s:
   * a little optimistic, as such numbers are, so now and then the service
   * answers 429 and the retry backs off. The default load is 50/s. */
  g_set.limiter_rate = 80u / g_set.scale > 5u ? 80u / g_set.scale : 5u;
  g_set.quota_rate = 60u / g_set.scale > 4u ? 60u / g_set.scale : 4u;
  return 0;
}

int main(int argc, char **argv) {
  int rc = parse_args(argc, argv);
  if (rc != 0)
    return rc;

  bw_runtime_t *rt = NULL;
  rc = bw_runtime_create(NULL, &rt);
  if (rc != 0) {
    fprintf(stderr, "llm_gateway: bw_runtime_create: %s\n", bw_strerror(rc));
    return 1;
  }

  /* --- The parts that are handles first, actors later (in the tree). --- */
  bw_breaker_t *br = NULL;
  bw_policy_t *pol = NULL;
  bw_metrics_t *met = NULL;
  bw_health_t *health = NULL;
  bw_observer_t *obs = NULL;
  static struct gen_arg gm;

  bw_breaker_opts_t bo;
  bw_breaker_opts_init(&bo);
  bo.name = "llm";
  bo.failure_threshold = 5;             /* 5 failed calls in a row ... */
  bo.window = BW_BREAKER_WINDOW_COUNT;  /* ... or half of the last 20 */
  bo.window_size = 20;
  bo.minimum_calls = 10;
  bo.failure_rate_pct = 50.0;
  bo.open_ms = g_set.breaker_open_ms;   /* then half-open: */
  bo.jitter_pct = 20;
  bo.half_open_permits = 3;             /* 3 probes, 2 must succeed */
  bo.success_threshold = 2;
  bo.half_open_max_ms = 2 * g_set.attempt_timeout_ms;
  bo.classify = classify_call;
  rc = bw_breaker_new(rt, &bo, &br);
  if (rc == 0)
    rc = bw_breaker_child_spec(br, "breaker", &connection_children[CONN_BREAKER]);

  /* The client: the "ai" preset, tuned for this demo's scale (the preset's
   * 120 s timeouts suit a real model; here calls take milliseconds). */
  bw_policy_opts_t po;
  if (rc == 0)
    rc = bw_policy_preset("ai", &po);
  if (rc == 0) {
    po.name = "llm-client";
    po.target_name = "llm-pool";       /* by name: followed across the pool's restarts */
    po.capacity = 1024;
    po.deadline_ms = g_set.deadline_ms; /* the whole request, retries included */
    po.max_attempts = 3;
    po.backoff.kind = BW_RETRY_BACKOFF_DECORRELATED; /* jitter: retries never in step */
    po.backoff.initial_ms = 50;
    po.backoff.max_ms = 400;
    po.backoff.multiplier = 3.0;
    po.retryable = retryable;
    po.budget_opts.ratio = 0.2;        /* retries: at most 20 % on top of calls */
    po.breaker = false;
    po.shared_breaker = br;            /* ours, supervised in the tree */
    po.rate = g_set.limiter_rate;      /* our side of the service's quota */
    po.rate_period_ms = 1000;
    po.rate_burst = 10;
    po.rate_wait_ms = 250;             /* wait a little for a token, then refuse */
    po.attempt_timeout_ms = g_set.attempt_timeout_ms;
    po.max_concurrent = 0;             /* the pool is the bulkhead */
    po.max_queued = 0;
    po.queue_timeout_ms = 0;
    po.fallback = fallback;
    po.fallback_on = BW_POLICY_FB_REJECTED;
    rc = bw_policy_new(rt, &po, &pol);
  }
  if (rc == 0)
    connection_children[CONN_CLIENT].arg = pol;

  /* Metrics: the breaker, the pool (by its registered name), the agents'
   * mailboxes, and the gateway's own counters. */
  if (rc == 0)
    rc = bw_metrics_new(rt, NULL, &met);
  if (rc == 0)
    rc = bw_metrics_child_spec(met, "metrics", &gateway_children[CH_METRICS]);
  if (rc == 0)
    rc = bw_metrics_add_breaker(met, br);
  if (rc == 0)
    rc = bw_metrics_add_bulkhead(met, BW_PID_NONE, "llm-pool");
  for (unsigned i = 0; rc == 0 && i < NAGENTS; i++)
    rc = bw_metrics_add_actor(met, agent_specs[i].name);
  bw_metric_family_t *fam = NULL;
  static const char *const result_label[] = {"result"};
  if (rc == 0)
    rc = bw_metrics_family(met, BW_METRIC_COUNTER, "gateway_prompts_total",
                           "Prompts by result.", result_label, 1, &fam);
  const char *model_v[] = {"model"}, *fallback_v[] = {"fallback"}, *failed_v[] = {"failed"};
  if (rc == 0)
    rc = bw_metrics_counter(fam, model_v, &gm.model);
  if (rc == 0)
    rc = bw_metrics_counter(fam, fallback_v, &gm.fallback);
  if (rc == 0)
    rc = bw_metrics_counter(fam, failed_v, &gm.failed);
  if (rc == 0)
    rc = bw_metrics_histogram_new(met, "gateway_answer_seconds",
                                  "Prompt to model answer, as the client sees it.",
                                  &gm.latency);

  /* Health: the breaker, the pool, config and the agents; restart storms
   * and escalations from the event bus (the defaults). */
  bw_health_opts_t ho;
  bw_health_opts_init(&ho);
  ho.name = "gateway";
  ho.period_ms = 500;
  if (rc == 0)
    rc = bw_health_new(rt, &ho, &health);
  if (rc == 0)
    rc = bw_health_child_spec(health, "health", &gateway_children[CH_HEALTH]);
  bw_health_component_t hc;
  if (rc == 0) {
    bw_health_component_init(&hc, BW_HEALTH_KIND_BREAKER, "llm-breaker");
    hc.breaker = br;
    rc = bw_health_add(health, &hc);
  }
  if (rc == 0) {
    bw_health_component_init(&hc, BW_HEALTH_KIND_BULKHEAD, "llm-pool");
    hc.target_name = "llm-pool";
    rc = bw_health_add(health, &hc);
  }
  for (unsigned i = 0; rc == 0 && i <= NAGENTS; i++) {
    const char *name = i < NAGENTS ? agent_specs[i].name : "config";
    bw_health_component_init(&hc, BW_HEALTH_KIND_ACTOR, name);
    hc.target_name = name;
    rc = bw_health_add(health, &hc);
  }

  /* The live tree page shows the breaker, the pool and the monitor. */
  if (rc == 0)
    rc = bw_tree_annotate_breaker(rt, br);
  if (rc == 0)
    rc = bw_tree_annotate_bulkhead(rt, BW_PID_NONE, "llm-pool");
  if (rc == 0)
    rc = bw_tree_annotate_health(rt, health);

  /* The service's quota (its rate limit, not ours). */
  if (rc == 0)
    rc = bw_ratelimit_init(&g_svc.quota, rt, g_set.quota_rate, 1000, 5);

  /* --- The event log, then the tree, then the load. --------------------- */
  bw_pid_t events = BW_PID_NONE, root = BW_PID_NONE, gen = BW_PID_NONE;
  g_t0_ms = bw_now_ms(rt);
  if (rc == 0)
    rc = bw_spawn(rt, &events_behaviour, NULL, NULL, &events);
  if (rc == 0)
    rc = bw_event_subscribe(rt, events,
                            BW_EV_MASK(BW_EV_BREAKER_STATE) | BW_EV_MASK(BW_EV_CHILD_EXITED) |
                                BW_EV_MASK(BW_EV_CHILD_RESTARTED) |
                                BW_EV_MASK(BW_EV_SUP_ESCALATED) |
                                BW_EV_MASK(BW_EV_HEALTH_CHANGED));
  bw_sup_error_t err;
  if (rc == 0 && (rc = bw_supervisor_start(rt, &gateway, &root, &err)) != 0)
    fprintf(stderr, "llm_gateway: start failed at %s: %s\n", err.child, err.message);
  if (rc == 0)
    rc = bw_spawn(rt, &generator_behaviour, &gm, NULL, &gen);
  if (rc != 0) {
    fprintf(stderr, "llm_gateway: setup: %s (%s)\n", bw_err_name(rc), bw_strerror(rc));
    bw_runtime_destroy(rt);
    return 1;
  }

  /* --- The observer, if it was built. ----------------------------------- */
  bw_observer_opts_t oo;
  bw_observer_opts_init(&oo);
  oo.port = (uint16_t)g_set.port;
  oo.tree_root = root;
  oo.metrics = met;
  oo.health = health;
  int orc = bw_observer_start(rt, &oo, &obs);
  if (orc == BW_ESTATE && oo.port != 0) {
    say("observer: port %u is taken; using any free port\n", (unsigned)oo.port);
    oo.port = 0;
    orc = bw_observer_start(rt, &oo, &obs);
  }
  say("llm_gateway: %u agents -> client (retry, breaker, %llu/s limit, %llu ms timeout) -> "
      "llm-pool (%u connections) -> %s; %u prompts/s, %u s\n",
      NAGENTS, (unsigned long long)g_set.limiter_rate,
      (unsigned long long)g_set.attempt_timeout_ms, POOL_WORKERS, g_set.model,
      g_set.rps / g_set.scale, g_set.duration_s);
  if (orc == 0)
    say("observer: http://127.0.0.1:%u/  (also /metrics, /health, /tree)\n",
        (unsigned)bw_observer_port(obs));
  else
    say("observer: not available (%s)\n", bw_strerror(orc));
  if (g_set.outage_for_ms > 0)
    say("faults: outage %.1f-%.1f s", (double)g_set.outage_at_ms / 1000.0,
        (double)(g_set.outage_at_ms + g_set.outage_for_ms) / 1000.0);
  else
    say("faults: no outage");
  if (g_set.crash_at_ms >= 0)
    say(", agent crash at %.1f s", (double)g_set.crash_at_ms / 1000.0);
  say(", hangs %.2f %%, errors %.2f %%%s%s\n", g_set.hang_bp / 100.0, g_set.error_bp / 100.0,
      g_set.bursts ? ", error bursts" : "", g_set.slow ? ", slow" : "");
  atomic_store(&g_producing, true);

  /* --- Run: inject, print, until the time is up and the story is told. --
   * The run ends when the time is up *and* the faults have had their
   * effect (the breaker closed again after the outage, the crashed agent
   * was restarted), so a slow machine stretches it rather than failing. */
  const uint64_t total = (uint64_t)g_set.duration_s * 1000u, deadline = total + 60000u;
  uint64_t t = 0, next_status = 1000;
  bool crashed = false;
  for (;;) {
    sleep_ms(10);
    t = run_ms(rt);
    if (!crashed && g_set.crash_at_ms >= 0 && t >= (uint64_t)g_set.crash_at_ms) {
      say("  >> fault: the next agent to take a prompt crashes\n");
      atomic_store(&g_crash_agent, true);
      crashed = true;
    }
    if (t >= next_status) {
      print_status(rt, root, br, pol, health, t);
      next_status += 1000;
    }
    bool effects = true;
    if (g_set.outage_for_ms > 0)
      effects = atomic_load(&g_ev.closed_after_outage) &&
                bw_breaker_state(br) == BW_BREAKER_CLOSED &&
                atomic_load(&g_led.model_after_outage) > 0;
    if (g_set.crash_at_ms >= 0)
      effects = effects && atomic_load(&g_ev.agent_restarts) >= 1;
    if ((t >= total && effects) || t >= deadline)
      break;
  }
  EXPECT(t < deadline); /* the faults had their effect in time */

  /* --- Drain: no new prompts; wait until every prompt is settled. ------- */
  atomic_store(&g_producing, false);
  say("  >> load stopped; draining\n");
  uint64_t prompts = 0, model = 0, fb = 0, failed = 0;
  const uint64_t drain_until = bw_now_ms(rt) + 30000u;
  do {
    sleep_ms(10);
    prompts = atomic_load(&g_led.prompts);
    model = atomic_load(&g_led.model);
    fb = fallback_total();
    failed = failed_total();
  } while (model + fb + failed != prompts && bw_now_ms(rt) < drain_until);

  /* --- Read what the parts say, while they run. ------------------------- */
  (void)bw_breaker_flush(br, 5000);
  bw_breaker_metrics_t bm;
  (void)bw_breaker_metrics(br, &bm);
  bw_policy_metrics_t pm;
  (void)bw_policy_metrics(pol, &pm);
  bw_bulkhead_metrics_t pool = {0};
  bw_pid_t pool_pid;
  EXPECT(bw_whereis(rt, "llm-pool", &pool_pid) == 0 &&
         bw_bulkhead_metrics(rt, pool_pid, &pool) == 0);
  bw_histogram_summary_t lat = {0};
  bw_metrics_snapshot_t *snap = NULL;
  if (bw_metrics_collect(met, 5000) == 0 && bw_metrics_latest(met, &snap) == 0) {
    (void)bw_metrics_snapshot_histogram(snap, "gateway_answer_seconds", NULL, 0, &lat);
    bw_metrics_snapshot_release(snap);
  }
  (void)bw_health_flush(health, 5000);
  int final_health = bw_health_status(health);
  unsigned up = 0, all = 0;
  count_tree(rt, root, &up, &all, 0);
  int http_tree = 0, http_health = 0;
  static char body[65536];
  if (obs != NULL) {
    /* The observer serves our tree and health (what the live page draws). */
    http_tree = http_get(bw_observer_port(obs), "/tree", body, sizeof body);
    EXPECT(http_tree == 200 && strstr(body, "\"llm-pool\"") != NULL &&
           strstr(body, "\"agent-3\"") != NULL);
    http_health = http_get(bw_observer_port(obs), "/health", body, sizeof body);
    EXPECT(http_health == 200 || http_health == 503);
    (void)bw_observer_stop(obs);
    obs = NULL;
  }

  /* --- Stop, and free the handles the tree's actors used. --------------- */
  atomic_store(&g_stopping, true); /* a hung call returns at once */
  EXPECT(bw_runtime_stop(rt) == 0);
  bw_runtime_stats_t rs;
  (void)bw_runtime_stats(rt, &rs);
  (void)bw_tree_forget_all(rt);
  EXPECT(bw_health_destroy(health) == 0);
  EXPECT(bw_metrics_destroy(met) == 0);
  EXPECT(bw_policy_destroy(pol) == 0);
  EXPECT(bw_breaker_destroy(br) == 0);

  uint64_t in_flight = prompts - model - fb - failed;
  say("\nsummary after %.1f s:\n", (double)t / 1000.0);
  say("  prompts %llu = model %llu + fallback %llu + failed %llu + in flight at stop %llu\n",
      (unsigned long long)prompts, (unsigned long long)model, (unsigned long long)fb,
      (unsigned long long)failed, (unsigned long long)in_flight);
  say("  fallback by cause:");
  for (int i = 1; i < BW_POLICY_CAUSE__COUNT; i++)
    if (atomic_load(&g_led.fallback[i]))
      say(" %s %llu", bw_policy_cause_name(i),
          (unsigned long long)atomic_load(&g_led.fallback[i]));
  say("\n  failed by cause:");
  for (int i = 0; i < FAIL__COUNT; i++)
    say(" %s %llu", fail_names[i], (unsigned long long)atomic_load(&g_led.failed[i]));
  say("\n  model answer latency: p50 %.0f ms, p99 %.0f ms, max %.0f ms\n",
      (double)lat.p50_ns / 1e6, (double)lat.p99_ns / 1e6, (double)lat.max_ns / 1e6);
  say("  client: %llu calls, %llu attempts, %llu retries, %llu timeouts, %llu budget "
      "refusals, %llu rate waits, %llu fallbacks\n",
      (unsigned long long)pm.calls, (unsigned long long)pm.attempts,
      (unsigned long long)pm.retries, (unsigned long long)pm.timeouts,
      (unsigned long long)pm.budget_exhausted, (unsigned long long)pm.rate_waits,
      (unsigned long long)pm.fallbacks);
  say("  breaker: opened %llu time(s) (%u in the outage), rejected %llu, failed %llu, "
      "succeeded %llu, ignored %llu; now %s\n",
      (unsigned long long)bm.opens, atomic_load(&g_ev.opens_in_outage),
      (unsigned long long)bm.rejected, (unsigned long long)bm.failed,
      (unsigned long long)bm.successful, (unsigned long long)bm.ignored,
      bw_breaker_state_name(bm.state));
  say("  pool: %llu jobs, %llu completed, %llu refused, %llu queue timeouts, %llu overflow "
      "workers started\n",
      (unsigned long long)pool.submitted, (unsigned long long)pool.completed,
      (unsigned long long)pool.rejected, (unsigned long long)pool.timed_out,
      (unsigned long long)pool.overflow_started);
  say("  service: %llu calls, %llu ok, %llu errors (500), %llu unavailable (503), %llu "
      "over quota (429), %llu hangs\n",
      (unsigned long long)atomic_load(&g_svc.calls), (unsigned long long)atomic_load(&g_svc.ok),
      (unsigned long long)atomic_load(&g_svc.e500), (unsigned long long)atomic_load(&g_svc.e503),
      (unsigned long long)atomic_load(&g_svc.e429),
      (unsigned long long)atomic_load(&g_svc.hangs));
  say("  supervision: %u crash(es), %u restart(s) (%u of agents); tree %u/%u up at the end; "
      "health %s\n",
      atomic_load(&g_ev.crashes), atomic_load(&g_ev.restarts),
      atomic_load(&g_ev.agent_restarts), up, all, bw_health_status_name(final_health));
  say("  runtime: sent %llu = handled %llu + dead letters %llu (late replies %llu)\n",
      (unsigned long long)rs.sent, (unsigned long long)rs.handled,
      (unsigned long long)rs.dead_letters,
      (unsigned long long)rs.dead_by_reason[BW_DL_LATE_REPLY]);

  /* --- Self-check: invariants, nothing that depends on timing. ---------- */
  EXPECT(prompts > 0 && model > 0);
  EXPECT(model + fb + failed == prompts); /* every prompt accounted for once */
  EXPECT(in_flight == 0);
  EXPECT(pm.in_flight == 0);
  EXPECT(rs.sent == rs.handled + rs.dead_letters);
  EXPECT(up == all && all == 3u + CONN__COUNT + NAGENTS);
  if (g_set.outage_for_ms > 0) {
    EXPECT(atomic_load(&g_ev.opens_in_outage) >= 1); /* the outage opened the breaker */
    EXPECT(atomic_load(&g_ev.closed_after_outage));  /* and it closed after it */
    EXPECT(bm.state == BW_BREAKER_CLOSED);
    EXPECT(atomic_load(&g_led.fallback[BW_POLICY_CAUSE_BREAKER]) > 0); /* fail fast, answered */
    EXPECT(atomic_load(&g_led.model_after_outage) > 0); /* the model answers again */
    EXPECT(atomic_load(&g_svc.e503) > 0);
  }
  if (g_set.crash_at_ms >= 0) {
    EXPECT(atomic_load(&g_ev.agent_restarts) >= 1);       /* the crash was repaired */
    EXPECT(atomic_load(&g_led.failed[FAIL_AGENT_CRASH]) >= 1); /* its prompt, counted */
  }

  bw_runtime_destroy(rt);
  if (g_failures) {
    fprintf(stderr, "llm_gateway: FAILED: %d unexpected result(s)\n", g_failures);
    return 1;
  }
  printf("%sllm_gateway: ok: %llu prompts = model %llu + fallback %llu + failed %llu; "
         "breaker opened %llu time(s) and closed; %u restart(s)%s\n",
         g_quiet ? "" : "\n", (unsigned long long)prompts, (unsigned long long)model,
         (unsigned long long)fb, (unsigned long long)failed, (unsigned long long)bm.opens,
         atomic_load(&g_ev.restarts), http_tree == 200 ? "; observer served /tree" : "");
  return 0;
}
