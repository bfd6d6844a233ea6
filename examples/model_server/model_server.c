/*
 * model_server: a small stand-in for a language-model API, for the main demo
 * and the HTTP client's tests. It speaks the OpenAI-compatible chat
 * completions protocol over HTTP/1.1 on loopback:
 *
 *   POST /v1/chat/completions   {"model": "...", "messages": [...],
 *                                "stream": false|true, "max_tokens": N}
 *        -> 200 application/json (a chat.completion object), or with
 *           "stream": true, text/event-stream: one "data: {chunk}" event per
 *           token and "data: [DONE]" at the end (server-sent events)
 *   GET  /healthz               -> 200 "ok"
 *   GET  /stats                 -> JSON counters (calls, by outcome)
 *
 * It has the fault switches the demo tells its story with. Times are seconds
 * after the server started (so a gateway that starts it knows when):
 *
 *   --latency-ms MIN:MAX     answer after a uniform delay in [MIN, MAX] (10:90)
 *   --tail PCT:MS            PCT % of calls take up to MS more (4:400)
 *   --error-rate PCT         PCT % of calls answer 500 (0)
 *   --burst AT:FOR           from AT for FOR s, half of all calls answer 500
 *                            (may be given several times)
 *   --quota RPS              beyond RPS calls per second: 429 with Retry-After
 *   --hang-rate PCT          PCT % of calls hang: nothing is sent for --hang-s
 *   --hang-s S               (30)
 *   --outage AT:FOR          from AT for FOR s every call answers 503 with
 *                            Retry-After: 1
 *   --token-ms MS            stream: delay between tokens (5)
 *   --port N                 (0: any free port; the port is printed)
 *   --api-key-env NAME       require "Authorization: Bearer <key>", the key
 *                            read from the environment variable NAME
 *   --seed N                 the random faults' seed
 *
 * It prints "model_server listening on 127.0.0.1:PORT" on stdout once ready,
 * then runs until SIGTERM or SIGINT. It only binds to 127.0.0.1. It is an
 * example, not part of the library: libmicrohttpd (one thread per
 * connection, so a hang or a slow stream costs a thread here, never in the
 * client) and jansson for JSON.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BURSTS 8
#define MAX_BODY (1u << 20) /* a request body larger than this gets 413 */

struct window {
  double at, len; /* seconds after start */
};

static struct {
  unsigned lat_min, lat_max, tail_pct, tail_ms, err_pct, hang_pct, hang_s, token_ms;
  unsigned quota_rps;
  struct window bursts[MAX_BURSTS];
  int nbursts;
  struct window outage;
  int port;
  const char *api_key;
  unsigned seed;
} g_opt = {10, 90, 4, 400, 0, 0, 30, 5, 0, {{0, 0}}, 0, {0, 0}, 0, NULL, 1};

static struct timespec g_start;
static atomic_uint_fast64_t g_calls, g_ok, g_e500, g_e503, g_e429, g_hangs, g_streams, g_e401,
    g_e400;
static pthread_mutex_t g_quota_mx = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_quota_sec, g_quota_used;
static volatile sig_atomic_t g_stop;

static double elapsed_s(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)(now.tv_sec - g_start.tv_sec) + (double)(now.tv_nsec - g_start.tv_nsec) / 1e9;
}

static bool in_window(const struct window *w, double t) {
  return w->len > 0 && t >= w->at && t < w->at + w->len;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !g_stop)
    ;
}

/* xorshift, one state per connection thread */
static unsigned rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return (unsigned)(*s >> 11);
}

/* Per-second quota: true when this call is over it. */
static bool over_quota(void) {
  if (g_opt.quota_rps == 0)
    return false;
  uint64_t sec = (uint64_t)elapsed_s();
  pthread_mutex_lock(&g_quota_mx);
  if (sec != g_quota_sec) {
    g_quota_sec = sec;
    g_quota_used = 0;
  }
  bool over = ++g_quota_used > g_opt.quota_rps;
  pthread_mutex_unlock(&g_quota_mx);
  return over;
}

/* --- responses ------------------------------------------------------------- */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *ctype,
                                 const char *body, const char *retry_after) {
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (r == NULL)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", ctype);
  if (retry_after != NULL)
    MHD_add_response_header(r, "Retry-After", retry_after);
  enum MHD_Result rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type,
                                  const char *msg, const char *retry_after) {
  char body[256];
  snprintf(body, sizeof body, "{\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}", type, msg);
  return send_text(c, status, "application/json", body, retry_after);
}

/* The answer's words: a deterministic function of the prompt, so tests can
 * check what came back. */
static void make_answer(const char *prompt, unsigned max_tokens, char *out, size_t cap,
                        unsigned *ntokens) {
  static const char *const words[] = {"the",   "model", "says", "hello", "about",
                                      "your",  "prompt", "with", "care", "and", "tokens"};
  size_t len = 0;
  unsigned h = 2166136261u;
  for (const char *p = prompt; *p; p++)
    h = (h ^ (unsigned char)*p) * 16777619u;
  unsigned n = max_tokens == 0 || max_tokens > 16 ? 16 : max_tokens;
  out[0] = '\0';
  for (unsigned i = 0; i < n; i++) {
    const char *w = words[(h + i * 7u) % (sizeof words / sizeof words[0])];
    int k = snprintf(out + len, cap - len, "%s%s", i ? " " : "", w);
    if (k < 0 || (size_t)k >= cap - len)
      break;
    len += (size_t)k;
  }
  *ntokens = n;
}

static char *completion_json(const char *model, const char *text, unsigned ntok,
                             unsigned long id) {
  char idbuf[40];
  snprintf(idbuf, sizeof idbuf, "chatcmpl-%lu", id);
  json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:{s:i, s:i, s:i}}",
                        "id", idbuf, "object", "chat.completion", "created",
                        (json_int_t)time(NULL), "model", model, "choices", "index", 0, "message",
                        "role", "assistant", "content", text, "finish_reason", "stop", "usage",
                        "prompt_tokens", 8, "completion_tokens", (int)ntok, "total_tokens",
                        (int)ntok + 8);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return s;
}

/* --- streaming: one SSE event per token ------------------------------------ */

struct stream {
  char model[64];
  char text[512];
  const char *next; /* next word in text */
  unsigned long id;
  bool done_sent;
  char pending[1024]; /* the event being written */
  size_t plen, poff;
};

static void stream_next_event(struct stream *s) {
  s->poff = 0;
  if (s->next == NULL || *s->next == '\0') {
    s->plen = (size_t)snprintf(s->pending, sizeof s->pending,
                               "data: {\"id\":\"chatcmpl-%lu\",\"object\":\"chat.completion.chunk\","
                               "\"model\":\"%s\",\"choices\":[{\"index\":0,\"delta\":{},"
                               "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
                               s->id, s->model);
    s->done_sent = true;
    return;
  }
  const char *end = strchr(s->next, ' ');
  size_t wl = end ? (size_t)(end - s->next) + 1 : strlen(s->next);
  s->plen = (size_t)snprintf(s->pending, sizeof s->pending,
                             "data: {\"id\":\"chatcmpl-%lu\",\"object\":\"chat.completion.chunk\","
                             "\"model\":\"%s\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                             "\"%.*s\"},\"finish_reason\":null}]}\n\n",
                             s->id, s->model, (int)wl, s->next);
  s->next += wl;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  struct stream *s = cls;
  if (s->poff == s->plen) {
    if (s->done_sent)
      return MHD_CONTENT_READER_END_OF_STREAM;
    if (g_opt.token_ms)
      sleep_ms(g_opt.token_ms); /* thread per connection: only this stream waits */
    if (g_stop)
      return MHD_CONTENT_READER_END_WITH_ERROR;
    stream_next_event(s);
  }
  size_t n = s->plen - s->poff;
  if (n > max)
    n = max;
  memcpy(buf, s->pending + s->poff, n);
  s->poff += n;
  return (ssize_t)n;
}

/* --- the request handler ---------------------------------------------------- */

struct req {
  char *body;
  size_t len;
  bool too_big;
};

static bool authorized(struct MHD_Connection *c) {
  if (g_opt.api_key == NULL)
    return true;
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
  if (h == NULL || strncmp(h, "Bearer ", 7) != 0)
    return false;
  const char *k = h + 7;
  size_t a = strlen(k), b = strlen(g_opt.api_key);
  unsigned diff = (unsigned)(a ^ b);
  for (size_t i = 0; i < a && i < b; i++)
    diff |= (unsigned)(k[i] ^ g_opt.api_key[i]);
  return diff == 0;
}

static enum MHD_Result complete(struct MHD_Connection *c, struct req *rq) {
  static atomic_ulong next_id = 1;
  uint64_t rs = (uint64_t)(uintptr_t)rq ^ ((uint64_t)g_opt.seed << 32) ^ atomic_fetch_add(&g_calls, 1);
  if (rs == 0)
    rs = 88172645463325252ull;
  if (!authorized(c)) {
    atomic_fetch_add(&g_e401, 1);
    return send_error(c, 401, "invalid_request_error", "missing or wrong API key", NULL);
  }
  json_error_t jerr;
  json_t *in = json_loadb(rq->body ? rq->body : "", rq->len, 0, &jerr);
  const char *model = "bulwark-mini", *prompt = "";
  int stream = 0, max_tokens = 0;
  json_t *msgs = NULL;
  if (in == NULL || json_unpack(in, "{s?s, s:o, s?b, s?i}", "model", &model, "messages", &msgs,
                                "stream", &stream, "max_tokens", &max_tokens) != 0 ||
      !json_is_array(msgs) || json_array_size(msgs) == 0) {
    json_decref(in);
    atomic_fetch_add(&g_e400, 1);
    return send_error(c, 400, "invalid_request_error", "expected {model, messages[], stream}",
                      NULL);
  }
  json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
  json_t *content = json_object_get(last, "content");
  if (json_is_string(content))
    prompt = json_string_value(content);

  double t = elapsed_s();
  unsigned delay = g_opt.lat_min + (g_opt.lat_max > g_opt.lat_min
                                        ? rnd(&rs) % (g_opt.lat_max - g_opt.lat_min + 1)
                                        : 0);
  if (g_opt.tail_pct && rnd(&rs) % 100 < g_opt.tail_pct && g_opt.tail_ms)
    delay += rnd(&rs) % g_opt.tail_ms;
  enum MHD_Result rc;
  if (in_window(&g_opt.outage, t)) {
    atomic_fetch_add(&g_e503, 1);
    rc = send_error(c, 503, "server_error", "the model service is down", "1");
  } else if (over_quota()) {
    atomic_fetch_add(&g_e429, 1);
    rc = send_error(c, 429, "rate_limit_error", "quota exceeded", "1");
  } else if (g_opt.hang_pct && rnd(&rs) % 100 < g_opt.hang_pct) {
    atomic_fetch_add(&g_hangs, 1);
    for (unsigned i = 0; i < g_opt.hang_s * 10 && !g_stop; i++)
      sleep_ms(100);
    rc = send_error(c, 504, "server_error", "hung", NULL);
  } else {
    bool burst = false;
    for (int i = 0; i < g_opt.nbursts; i++)
      burst |= in_window(&g_opt.bursts[i], t);
    unsigned err = g_opt.err_pct + (burst ? 50u : 0u);
    sleep_ms(delay);
    if (err && rnd(&rs) % 100 < err) {
      atomic_fetch_add(&g_e500, 1);
      rc = send_error(c, 500, "server_error", "internal error", NULL);
    } else if (stream) {
      struct stream *s = calloc(1, sizeof *s);
      if (s == NULL) {
        json_decref(in);
        return MHD_NO;
      }
      /* the model name goes into JSON unescaped: keep only safe characters */
      size_t k = 0;
      for (const char *p = model; *p && k + 1 < sizeof s->model; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_')
          s->model[k++] = *p;
      s->model[k] = '\0';
      unsigned ntok;
      make_answer(prompt, (unsigned)max_tokens, s->text, sizeof s->text, &ntok);
      s->next = s->text;
      s->id = atomic_fetch_add(&next_id, 1);
      struct MHD_Response *r =
          MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stream_read, s, free);
      if (r == NULL) {
        free(s);
        json_decref(in);
        return MHD_NO;
      }
      MHD_add_response_header(r, "Content-Type", "text/event-stream");
      MHD_add_response_header(r, "Cache-Control", "no-cache");
      atomic_fetch_add(&g_streams, 1);
      atomic_fetch_add(&g_ok, 1);
      rc = MHD_queue_response(c, 200, r);
      MHD_destroy_response(r);
    } else {
      char text[512];
      unsigned ntok;
      make_answer(prompt, (unsigned)max_tokens, text, sizeof text, &ntok);
      char *body = completion_json(model, text, ntok, atomic_fetch_add(&next_id, 1));
      atomic_fetch_add(&g_ok, 1);
      rc = body ? send_text(c, 200, "application/json", body, NULL) : MHD_NO;
      free(body);
    }
  }
  json_decref(in);
  return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ctx) {
  (void)cls;
  (void)version;
  struct req *rq = *ctx;
  if (rq == NULL) {
    rq = calloc(1, sizeof *rq);
    if (rq == NULL)
      return MHD_NO;
    *ctx = rq;
    return MHD_YES;
  }
  if (*size > 0) {
    if (!rq->too_big && rq->len + *size <= MAX_BODY) {
      char *nb = realloc(rq->body, rq->len + *size + 1);
      if (nb == NULL)
        return MHD_NO;
      memcpy(nb + rq->len, data, *size);
      rq->body = nb;
      rq->len += *size;
      rq->body[rq->len] = '\0';
    } else {
      rq->too_big = true;
    }
    *size = 0;
    return MHD_YES;
  }
  if (strcmp(method, "GET") == 0 && strcmp(url, "/healthz") == 0)
    return send_text(c, 200, "text/plain", "ok", NULL);
  if (strcmp(method, "GET") == 0 && strcmp(url, "/stats") == 0) {
    char b[400];
    snprintf(b, sizeof b,
             "{\"calls\":%lu,\"ok\":%lu,\"e500\":%lu,\"e503\":%lu,\"e429\":%lu,\"hangs\":%lu,"
             "\"streams\":%lu,\"e401\":%lu,\"e400\":%lu}",
             (unsigned long)g_calls, (unsigned long)g_ok, (unsigned long)g_e500,
             (unsigned long)g_e503, (unsigned long)g_e429, (unsigned long)g_hangs,
             (unsigned long)g_streams, (unsigned long)g_e401, (unsigned long)g_e400);
    return send_text(c, 200, "application/json", b, NULL);
  }
  if (strcmp(url, "/v1/chat/completions") != 0)
    return send_error(c, 404, "invalid_request_error", "no such endpoint", NULL);
  if (strcmp(method, "POST") != 0)
    return send_error(c, 405, "invalid_request_error", "use POST", NULL);
  if (rq->too_big)
    return send_error(c, 413, "invalid_request_error", "request too large", NULL);
  return complete(c, rq);
}

static void on_done(void *cls, struct MHD_Connection *c, void **ctx,
                    enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  struct req *rq = *ctx;
  if (rq != NULL) {
    free(rq->body);
    free(rq);
  }
  *ctx = NULL;
}

/* --- command line -------------------------------------------------------------- */

static bool parse_pair(const char *s, double *a, double *b) {
  char *end;
  *a = strtod(s, &end);
  if (*end != ':')
    return false;
  *b = strtod(end + 1, &end);
  return *end == '\0' && *a >= 0 && *b >= 0;
}

static bool parse_uint(const char *s, unsigned *out) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v > 1000000000ul)
    return false;
  *out = (unsigned)v;
  return true;
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--port N] [--latency-ms MIN:MAX] [--tail PCT:MS] [--error-rate PCT]\n"
          "          [--burst AT:FOR]... [--quota RPS] [--hang-rate PCT] [--hang-s S]\n"
          "          [--outage AT:FOR] [--token-ms MS] [--api-key-env NAME] [--seed N]\n",
          argv0);
  return 2;
}

static bool parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    double a, b;
    unsigned u;
    if (v == NULL)
      return false;
    i++;
    if (strcmp(f, "--port") == 0 && parse_uint(v, &u) && u < 65536)
      g_opt.port = (int)u;
    else if (strcmp(f, "--latency-ms") == 0 && parse_pair(v, &a, &b) && a <= b)
      g_opt.lat_min = (unsigned)a, g_opt.lat_max = (unsigned)b;
    else if (strcmp(f, "--tail") == 0 && parse_pair(v, &a, &b) && a <= 100)
      g_opt.tail_pct = (unsigned)a, g_opt.tail_ms = (unsigned)b;
    else if (strcmp(f, "--error-rate") == 0 && parse_uint(v, &u) && u <= 100)
      g_opt.err_pct = u;
    else if (strcmp(f, "--burst") == 0 && parse_pair(v, &a, &b) && g_opt.nbursts < MAX_BURSTS)
      g_opt.bursts[g_opt.nbursts++] = (struct window){a, b};
    else if (strcmp(f, "--quota") == 0 && parse_uint(v, &u))
      g_opt.quota_rps = u;
    else if (strcmp(f, "--hang-rate") == 0 && parse_uint(v, &u) && u <= 100)
      g_opt.hang_pct = u;
    else if (strcmp(f, "--hang-s") == 0 && parse_uint(v, &u))
      g_opt.hang_s = u;
    else if (strcmp(f, "--outage") == 0 && parse_pair(v, &a, &b))
      g_opt.outage = (struct window){a, b};
    else if (strcmp(f, "--token-ms") == 0 && parse_uint(v, &u))
      g_opt.token_ms = u;
    else if (strcmp(f, "--seed") == 0 && parse_uint(v, &u))
      g_opt.seed = u;
    else if (strcmp(f, "--api-key-env") == 0) {
      g_opt.api_key = getenv(v);
      if (g_opt.api_key == NULL || *g_opt.api_key == '\0') {
        fprintf(stderr, "model_server: environment variable %s is not set\n", v);
        return false;
      }
    } else
      return false;
  }
  return true;
}

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

int main(int argc, char **argv) {
  if (!parse_args(argc, argv))
    return usage(argv[0]);
  clock_gettime(CLOCK_MONOTONIC, &g_start);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_opt.port)};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
      0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
      MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_CONNECTION_LIMIT, 20000u,
      MHD_OPTION_THREAD_STACK_SIZE, (size_t)(128 * 1024), MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)120, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_END);
  if (d == NULL) {
    fprintf(stderr, "model_server: cannot listen on 127.0.0.1:%d\n", g_opt.port);
    return 1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
  printf("model_server listening on 127.0.0.1:%u\n", info ? (unsigned)info->port : 0u);
  fflush(stdout);
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  while (!g_stop)
    pause();
  MHD_stop_daemon(d);
  return 0;
}
