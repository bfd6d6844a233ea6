/* The HTTP client's shared internals (patterns/http*.c). */
#ifndef BULWARK_PATTERNS_HTTP_INTERNAL_H
#define BULWARK_PATTERNS_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bulwark/http.h"

struct bw_http_req {
  char method[17];
  char *url;
  char **headers;
  size_t nheaders;
  char *body;
  size_t body_len;
  bool has_body;
  bool idempotent;
  uint64_t timeout_ms; /* set by bw_http_request / bw_http_call */
};

void bw__http_req_dtor(void *q);
/* The reply status of a response code (http.h's table). */
int bw__http_status_of(long code, uint64_t retry_after_ms);

#endif
