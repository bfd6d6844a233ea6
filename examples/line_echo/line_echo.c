/*
 * line_echo: a line-protocol TCP server and client, both actors, on the
 * runtime's I/O (bulwark/io.h). The server listens on 127.0.0.1 (a free
 * port), answers every line with "echo: <line>"; the client connects with a
 * deadline, sends a few lines, checks each answer, and stops the program.
 * Readiness arrives as BW_MSG_IO messages: no thread per connection.
 *
 *   ./line_echo [--quiet]
 */
#include <bulwark/bulwark.h>

#include <stdio.h>
#include <string.h>

#define LINES 5

static bool quiet;

/* --- the server: accept, then echo each line ------------------------------------ */

static int server_init(bw_ctx_t *ctx, void *st, void *arg) {
  bw_tcp_t *l;
  int rc = bw_tcp_listen(ctx, NULL, 0, 64, NULL, &l); /* NULL: loopback only */
  if (rc == 0)
    *(uint16_t *)arg = bw_tcp_port(l);
  (void)st;
  return rc;
}

static int server_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *msg) {
  (void)st;
  if (msg->type != BW_MSG_IO)
    return BW_CONTINUE;
  const bw_io_event_t *ev = msg->data;
  bw_tcp_t *c = ev->ud; /* every watch here is a bw_tcp_t */
  int r = bw_tcp_on_io(ctx, c, ev);
  if (r < 0) {
    bw_tcp_close(ctx, c);
    return BW_CONTINUE;
  }
  bw_tcp_t *nc;
  if (r & BW_TCP_ACCEPT) {
    while (bw_tcp_accept(ctx, c, &nc) == 1)
      ;
    return BW_CONTINUE;
  }
  const char *line;
  size_t len;
  while (bw_tcp_getline(ctx, c, &line, &len) == 1) {
    char out[128];
    int n = snprintf(out, sizeof out, "echo: %.*s\n", (int)len, line);
    bw_tcp_write(ctx, c, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
  }
  if (r & BW_TCP_EOF)
    bw_tcp_close(ctx, c);
  return BW_CONTINUE;
}

/* --- the client: connect, send, check, stop -------------------------------------- */

enum { T_RESULT = 1 };

typedef struct client_arg {
  uint16_t port;
  bw_pid_t report_to; /* main's inbox: gets the client's exit reason */
} client_arg_t;

typedef struct client {
  bw_tcp_t *c;
  int sent, got;
  bw_pid_t report_to;
} client_t;

static int client_init(bw_ctx_t *ctx, void *st, void *arg) {
  client_t *s = st;
  const client_arg_t *a = arg;
  s->report_to = a->report_to;
  /* the deadline runs on the runtime's clock */
  return bw_tcp_connect(ctx, NULL, a->port, 2000, NULL, &s->c);
}

/* However the client ends, main learns why (its inbox gets the reason). */
static void client_terminate(bw_ctx_t *ctx, void *st, const bw_reason_t *why) {
  client_t *s = st;
  (void)bw_send(bw_ctx_runtime(ctx), s->report_to, T_RESULT, why, sizeof *why);
}

static int send_next(bw_ctx_t *ctx, client_t *s) {
  char line[32];
  int n = snprintf(line, sizeof line, "hello %d\n", ++s->sent);
  return bw_tcp_write(ctx, s->c, line, (size_t)n);
}

static int client_handle(bw_ctx_t *ctx, void *st, const bw_msg_t *msg) {
  client_t *s = st;
  if (msg->type != BW_MSG_IO)
    return BW_CONTINUE;
  int r = bw_tcp_on_io(ctx, s->c, msg->data);
  if (r < 0)
    return r; /* refused, timed out, reset: the client crashes with the code */
  if (r & BW_TCP_CONNECTED)
    return send_next(ctx, s) == 0 ? BW_CONTINUE : BW_EIO;
  const char *line;
  size_t len;
  while (bw_tcp_getline(ctx, s->c, &line, &len) == 1) {
    char want[32];
    snprintf(want, sizeof want, "echo: hello %d", s->got + 1);
    if (len != strlen(want) || memcmp(line, want, len) != 0)
      return BW_EIO;
    if (!quiet)
      printf("client got \"%.*s\"\n", (int)len, line);
    if (++s->got == LINES)
      return BW_STOP; /* its exit closes the connection */
    if (send_next(ctx, s) != 0)
      return BW_EIO;
  }
  return BW_CONTINUE;
}

int main(int argc, char **argv) {
  quiet = argc > 1 && strcmp(argv[1], "--quiet") == 0;
  bw_runtime_t *rt;
  if (bw_runtime_create(NULL, &rt) != 0)
    return 1;
  static const bw_behaviour_t server = {
      .name = "echo_server", .init = server_init, .handle = server_handle};
  static const bw_behaviour_t client = {.name = "echo_client",
                                        .state_size = sizeof(client_t),
                                        .init = client_init,
                                        .handle = client_handle,
                                        .terminate = client_terminate};
  uint16_t port = 0;
  bw_pid_t sp, cp;
  bw_inbox_t *ib = NULL;
  int rc = bw_spawn(rt, &server, &port, NULL, &sp);
  if (rc == 0)
    rc = bw_inbox_new(rt, NULL, &ib);
  client_arg_t ca = {.port = port, .report_to = ib ? bw_inbox_pid(ib) : BW_PID_NONE};
  if (rc == 0)
    rc = bw_spawn(rt, &client, &ca, NULL, &cp);
  /* main waits for the client's report in its inbox (a plain thread can
   * receive): it comes from the client's terminate, however it ended */
  const bw_msg_t *m = NULL;
  if (rc == 0)
    rc = bw_inbox_receive_match(ib, T_RESULT, 0, 10000, &m);
  bw_reason_t why = {.kind = BW_REASON_CRASH};
  if (rc == 0 && m->len == sizeof why)
    memcpy(&why, m->data, sizeof why);
  bool ok = rc == 0 && why.kind == BW_REASON_NORMAL;
  if (!ok)
    fprintf(stderr, "line_echo: %s\n", rc != 0 ? bw_strerror(rc) : why.text);
  else if (!quiet)
    printf("%d lines echoed over 127.0.0.1:%u\n", LINES, port);
  bw_inbox_destroy(ib);
  bw_runtime_destroy(rt); /* stops the server; its listener is closed with it */
  return ok ? 0 : 1;
}
