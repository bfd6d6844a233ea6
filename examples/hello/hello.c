/*
 * hello: the smallest bulwark program.
 *
 * One behaviour (a greeter), one actor spawned from it, one message sent
 * (fire and forget), one request answered (bw_call + bw_reply), then stop.
 * Read it top to bottom; every other example builds on these five steps.
 *
 *   ./hello            prints the greeting and the runtime's accounting
 *   ./hello --quiet    prints one summary line
 *
 * Exit code 0 when everything happened as described, 1 otherwise.
 */
#include <bulwark/bulwark.h>

#include <stdio.h>
#include <string.h>

/* Message types are yours to choose: any value below BW_MSG_PATTERN_BASE. */
enum {
  HELLO_NOTE = 1, /* fire and forget: payload = a NUL-terminated name */
  HELLO_GREET,    /* request: payload = a name; reply = the greeting text */
};

/* The actor's state. The runtime allocates state_size bytes, zeroed, and
 * hands them to every callback: the actor owns them, nobody else. */
struct greeter {
  unsigned notes; /* HELLO_NOTEs seen */
};

/* One call per message, one message at a time: no locks needed inside. */
static int greeter_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  struct greeter *g = state;

  /* Payloads are copies, valid only during this call. Check before use. */
  if (msg->len == 0 || memchr(msg->data, '\0', msg->len) == NULL)
    return BW_CONTINUE; /* not a string: ignore it */
  const char *name = msg->data;

  switch (msg->type) {
  case HELLO_NOTE:
    g->notes++;
    return BW_CONTINUE;
  case HELLO_GREET: {
    char text[BW_MSG_INLINE_MAX];
    int n = snprintf(text, sizeof text, "Hello, %s! (after %u note%s)", name, g->notes,
                     g->notes == 1 ? "" : "s");
    if (n < 0 || (size_t)n >= sizeof text)
      n = (int)sizeof text - 1; /* truncated, still terminated */
    /* The reply goes to whoever asked; status 0 means success. */
    (void)bw_reply(ctx, msg, 0, HELLO_GREET, text, (size_t)n + 1);
    return BW_CONTINUE;
  }
  default:
    return BW_CONTINUE;
  }
}

/* A behaviour is plain data: a name, the state's size, the callbacks. */
static const bw_behaviour_t greeter_behaviour = {
    .name = "greeter",
    .state_size = sizeof(struct greeter),
    .handle = greeter_handle,
};

int main(int argc, char **argv) {
  bool quiet = argc > 1 && (strcmp(argv[1], "--quiet") == 0 || strcmp(argv[1], "-q") == 0);

  /* 1. A runtime: NULL options = one scheduler thread per CPU, real clock. */
  bw_runtime_t *rt = NULL;
  int rc = bw_runtime_create(NULL, &rt);
  if (rc != 0) {
    fprintf(stderr, "hello: bw_runtime_create: %s\n", bw_strerror(rc));
    return 1;
  }

  /* 2. Spawn: init (none here) has run when bw_spawn returns. */
  bw_pid_t greeter = BW_PID_NONE;
  rc = bw_spawn(rt, &greeter_behaviour, NULL, NULL, &greeter);

  /* 3. Send: queued, never blocks. Messages from one sender to one
   *    receiver arrive in order, so the note is counted before the greeting. */
  if (rc == 0)
    rc = bw_send(rt, greeter, HELLO_NOTE, "world", sizeof "world");

  /* 4. Call: send a request and wait for the reply (2 s at most). main may
   *    block; an actor's handler never does (it would use bw_request). */
  bw_reply_t reply;
  if (rc == 0)
    rc = bw_call(rt, greeter, HELLO_GREET, "world", sizeof "world", 2000, &reply);
  bool ok = rc == 0 && reply.len > 0 && reply.data[reply.len - 1] == '\0' &&
            strcmp((const char *)reply.data, "Hello, world! (after 1 note)") == 0;
  if (rc != 0)
    fprintf(stderr, "hello: %s (%s)\n", bw_err_name(rc), bw_strerror(rc));
  else if (!quiet)
    printf("%s\n", (const char *)reply.data);

  /* 5. Stop: every actor gets a shutdown and runs its terminate; what is
   *    still queued becomes a counted dead letter. Then the counters. */
  bw_runtime_stats_t st;
  if (bw_runtime_stop(rt) != 0 || bw_runtime_stats(rt, &st) != 0)
    ok = false;
  else
    ok = ok && st.sent == st.handled + st.dead_letters && st.spawned == 1 && st.live == 0;
  bw_runtime_destroy(rt);

  if (!ok) {
    fprintf(stderr, "hello: FAILED\n");
    return 1;
  }
  printf("hello: ok: sent %llu = handled %llu + dead letters %llu\n",
         (unsigned long long)st.sent, (unsigned long long)st.handled,
         (unsigned long long)st.dead_letters);
  return 0;
}
