/*
 * The HTTP client when the build found no libcurl (Debian:
 * libcurl4-openssl-dev): requests and responses still build and parse
 * (patterns/http_req.c), and the client says BW_ENOTSUP. The per-host
 * table (patterns/http_hosts.c) needs no curl and is built either way.
 */
#include <string.h>

#include "bulwark/error.h"
#include "bulwark/http.h"
#include "patterns/http_internal.h"

void bw_http_opts_init(bw_http_opts_t *o) {
  if (o != NULL)
    memset(o, 0, sizeof *o);
}

int bw_http_opts_validate(const bw_http_opts_t *o) {
  return o == NULL ? BW_EINVAL : BW_ENOTSUP;
}

int bw_http_new(bw_runtime_t *rt, const bw_http_opts_t *o, bw_http_t **out) {
  (void)rt;
  (void)o;
  (void)out;
  return BW_ENOTSUP;
}

static int none_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  (void)ctx;
  (void)state;
  (void)msg;
  return BW_ENOTSUP;
}

const bw_behaviour_t bw_http_behaviour = {.name = "http_client", .handle = none_handle};

int bw_http_child_spec(bw_http_t *h, const char *id, bw_child_spec_t *out) {
  (void)h;
  (void)id;
  (void)out;
  return BW_ENOTSUP;
}

int bw_http_start(bw_http_t *h, bw_pid_t *out) {
  (void)h;
  (void)out;
  return BW_ENOTSUP;
}

int bw_http_stop(bw_http_t *h) {
  (void)h;
  return BW_ENOTSUP;
}

int bw_http_destroy(bw_http_t *h) {
  (void)h;
  return 0;
}

bw_pid_t bw_http_pid(const bw_http_t *h) {
  (void)h;
  return BW_PID_NONE;
}

int bw_http_stats(const bw_http_t *h, bw_http_stats_t *out) {
  (void)h;
  (void)out;
  return BW_ENOTSUP;
}

const char *bw_http_name(const bw_http_t *h) {
  (void)h;
  return NULL;
}

int bw_http_request(bw_ctx_t *ctx, bw_pid_t client, bw_http_req_t *q, uint64_t timeout_ms,
                    uint64_t *ref) {
  (void)ctx;
  (void)client;
  (void)timeout_ms;
  (void)ref;
  bw_http_req_free(q);
  return BW_ENOTSUP;
}

int bw_http_call(bw_runtime_t *rt, bw_pid_t client, bw_http_req_t *q, uint64_t timeout_ms,
                 bw_http_resp_t **out) {
  (void)rt;
  (void)client;
  (void)timeout_ms;
  if (out != NULL)
    *out = NULL;
  bw_http_req_free(q);
  return BW_ENOTSUP;
}

int bw_http_ack(bw_ctx_t *ctx, bw_pid_t client, const bw_http_chunk_t *c) {
  (void)ctx;
  (void)client;
  (void)c;
  return BW_ENOTSUP;
}
