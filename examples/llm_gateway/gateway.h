/*
 * llm_gateway: what the files of the main demo share. One idea a file:
 *
 *   main.c      the run: setup, the fault switch, the status line, the
 *               drain, the summary and its self-check
 *   settings.c  the command line, and what is derived from it
 *   server.c    the model server the gateway starts as its child process
 *   model.c     the model client: the HTTP client and the policy around it,
 *               the chat-completions JSON, the fallback
 *   tree.c      the supervision tree as C data: config, connection, agents
 *   agents.c    the agents: a prompt in, a model call out, the answer back
 *   load.c      the load generator, the ledger of prompts, the event log
 *   report.c    the status line and the summary
 */
#ifndef LLM_GATEWAY_H
#define LLM_GATEWAY_H

#include <bulwark/bulwark.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* === Messages ============================================================== */

enum {
  PROMPT = 1,   /* load generator -> agent (request): struct prompt */
  GEN_TICK,     /* load generator: its own interval timer */
  LLM_FALLBACK, /* the client's fallback answer (a reply): struct llm_answer */
  AGENT_ANSWER, /* agent -> load generator (reply type): struct agent_reply */
  AGENT_FAILED, /* agent -> load generator (reply type): struct agent_reply, cause = FAIL_* */
};

struct prompt {
  uint64_t sent_ns; /* runtime clock, for the answer latency */
  uint32_t id;
  char text[60];
};

struct llm_answer {
  int32_t cause; /* LLM_FALLBACK: the bw_policy_cause_t that ended the call */
  uint32_t tokens;
  char text[88];
};

struct agent_reply {
  uint64_t sent_ns;
  int32_t cause; /* AGENT_ANSWER from the fallback: bw_policy_cause_t; AGENT_FAILED: FAIL_* */
  uint32_t tokens;
  char text[88];
};

/* Why a prompt failed, as the load generator counts it. */
enum fail {
  FAIL_TIMEOUT = 0, /* the attempt timeout or the deadline */
  FAIL_MODEL_ERROR, /* 5xx on every attempt */
  FAIL_THROTTLED,   /* 429, or 503 with Retry-After, on every attempt (or the wait outlasted us) */
  FAIL_CONNECTION,  /* refused, reset, DNS, TLS, broken HTTP */
  FAIL_BAD_ANSWER,  /* 4xx (a wrong key, say), or an answer that is not a chat completion */
  FAIL_CLIENT_FULL, /* the client's transfers and its queue were full (the bulkhead) */
  FAIL_CLIENT_DOWN, /* the client was restarting */
  FAIL_AGENT_CRASH, /* the agent crashed with the prompt */
  FAIL_NO_AGENT,    /* the agent was restarting: nobody to send to */
  FAIL_AGENT_BUSY,  /* the agent had AGENT_INFLIGHT prompts in flight */
  FAIL_OTHER,
  FAIL__COUNT
};
extern const char *const fail_names[FAIL__COUNT];

/* === Settings (settings.c) ================================================= */

struct settings {
  char model[64];
  char url[512];           /* the chat-completions endpoint */
  char server_path[512];   /* the model server's binary (local mode) */
  const char *api_key_env; /* NULL = no key */
  bool remote;             /* --url: a real service, no child server */
  unsigned duration_s;
  unsigned rps;                         /* prompts per second (divided by BW_TEST_SCALE) */
  uint64_t outage_at_ms, outage_for_ms; /* outage_for 0 = no outage */
  int64_t crash_at_ms;                  /* < 0: no crash */
  unsigned hang_pct, error_pct;         /* the server's hangs and random 500s, % of calls */
  bool bursts;                          /* error bursts at 15 % and 80 % of the run */
  bool slow;                            /* latencies x4 */
  unsigned quota_rps;                   /* the server's quota (429 beyond it) */
  int port;                             /* observer; -1 = default */
  unsigned scale;                       /* BW_TEST_SCALE */
  /* derived */
  uint64_t attempt_timeout_ms, deadline_ms, breaker_open_ms;
  uint64_t limiter_rate;
};

#define NAGENTS 4u
#define AGENT_INFLIGHT 64u /* prompts in flight per agent */
#define BURST_MS 400u      /* an error burst lasts this long */
#define GEN_TICK_MS 10u    /* the load generator's period */

extern struct settings g_set;
extern bool g_quiet;
/* The runtime clock at the start of the run (set by main before anything
 * starts; the child server's clock starts just after it). */
extern uint64_t g_t0_ms;
/* Switches main flips; the actors read them. */
extern atomic_bool g_producing;   /* the load generator sends prompts */
extern atomic_bool g_crash_agent; /* the next agent to take a prompt crashes */

int parse_args(int argc, char **argv); /* 0, or the exit code (2) */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
void say(const char *fmt, ...);
uint64_t run_ms(bw_runtime_t *rt); /* ms since the run started */
bool in_outage(uint64_t t);
bool in_burst(uint64_t t);
uint64_t burst_at_ms(int i); /* the i-th error burst's start (i = 0, 1) */

/* === The model server child (server.c) ===================================== */

/* Starts the model server on port (0: any free one) with the fault schedule
 * of g_set from base_ms of the run on; the first start (port 0) fills
 * g_set.url, before anything reads it. Returns its pid, or
 * -1 (a message said why). */
pid_t server_start(uint16_t port, uint64_t base_ms);
uint16_t server_port(void);
/* The outage: kills it at once (connections reset, then refused). */
void server_kill(pid_t pid);
/* The server's own counters (GET /stats); false if it did not answer. */
struct server_stats {
  unsigned long calls, ok, e500, e503, e429, hangs;
};
bool server_stats(struct server_stats *out);
/* Stops it (SIGTERM, then SIGKILL after 5 s) and reaps it. */
void server_stop(pid_t pid);
/* A GET to 127.0.0.1:port (the observer, the server's /stats): the HTTP
 * status code, or -1. At most 5 s. */
int http_get(uint16_t port, const char *path, char *body, size_t cap);

/* === The model client (model.c) ============================================ */

/* Creates the breaker, the policy and the HTTP client handles (no actors). */
int model_client_new(bw_runtime_t *rt, bw_breaker_t **br, bw_policy_t **pol, bw_http_t **http);
/* A chat-completions request for prompt text from agent (NULL: no memory). */
bw_http_req_t *model_request(uint32_t agent, const char *model, const char *text);
/* Parses a chat-completions answer into *out; false if it is not one. */
bool model_parse(const char *body, size_t len, struct llm_answer *out);

/* === The tree (tree.c) and its agents (agents.c) =========================== */

enum { CH_CONFIG, CH_METRICS, CH_CONNECTION, CH_AGENTS, CH_HEALTH, CH__COUNT };
enum { CONN_BREAKER, CONN_CLIENT, CONN__COUNT };
extern bw_child_spec_t gateway_children[CH__COUNT];
extern bw_child_spec_t connection_children[CONN__COUNT];
extern const bw_child_spec_t agent_specs[NAGENTS];
extern const bw_sup_spec_t gateway;
extern const bw_behaviour_t agent_behaviour;
extern _Atomic(const struct settings *) g_config; /* NULL while config is down */

/* === The load generator, the ledger, the event log (load.c) ================ */

/* Where every prompt ended up: bumped once per prompt by the generator,
 * the only actor that sends prompts and gets their replies. */
struct ledger {
  atomic_uint_fast64_t prompts;            /* sent (or tried: no_agent counts too) */
  atomic_uint_fast64_t model;              /* answered by the model */
  atomic_uint_fast64_t model_after_outage; /* of which, received after the outage */
  atomic_uint_fast64_t fallback[BW_POLICY_CAUSE__COUNT]; /* by the fallback, by cause */
  atomic_uint_fast64_t failed[FAIL__COUNT];
};
extern struct ledger g_led;
uint64_t fallback_total(void);
uint64_t failed_total(void);

struct gen_arg {
  bw_counter_t *model, *fallback, *failed; /* the metrics' counters */
  bw_histogram_t *latency;
};
extern const bw_behaviour_t generator_behaviour;

/* What supervision, the breaker and the health monitor reported. */
struct event_counts {
  atomic_uint restarts;            /* BW_EV_CHILD_RESTARTED, anywhere in the tree */
  atomic_uint agent_restarts;      /* of which, agents */
  atomic_uint crashes;
  atomic_uint opens_in_outage;     /* breaker -> open during the outage */
  atomic_bool closed_after_outage; /* breaker -> closed after the outage ended */
};
extern struct event_counts g_ev;
extern const bw_behaviour_t events_behaviour;

/* === What the run shows (report.c) ======================================== */

/* Workers running / workers declared, walking the live tree. */
void count_tree(bw_runtime_t *rt, bw_pid_t sup, unsigned *up, unsigned *all, int depth);
void print_status(bw_runtime_t *rt, bw_pid_t root, bw_breaker_t *br, bw_http_t *http,
                  bw_health_t *h, uint64_t t);
void print_summary(uint64_t t, uint64_t prompts, uint64_t model, uint64_t fb, uint64_t failed,
                   const bw_histogram_summary_t *lat, const bw_policy_stats_t *pm,
                   const bw_breaker_stats_t *bm, const bw_http_stats_t *hs,
                   const struct server_stats *ss, bool have_ss, unsigned up, unsigned all,
                   int final_health, const bw_runtime_stats_t *rs);

#endif
