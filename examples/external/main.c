/*
 * external: a program outside bulwark's source tree, built against the
 * installed library. It proves the install works: headers, the shared and
 * the static library, the CMake package and the pkg-config file.
 *
 * It spawns a counter under a one_for_one supervisor, makes it crash once,
 * and checks that the supervisor restarted it and that it still answers.
 * Exit code 0 on success.
 */
#include <bulwark/bulwark.h>

#include <stdio.h>
#include <string.h>

enum { ADD = 1, BOOM };

static int counter_handle(bw_ctx_t *ctx, void *state, const bw_msg_t *msg) {
  uint64_t *total = state;
  if (msg->type == BOOM)
    return BW_ESTATE; /* a crash: the supervisor restarts us with a fresh state */
  if (msg->type == ADD && (msg->flags & BW_MSGF_REQUEST)) {
    *total += 1;
    (void)bw_reply(ctx, msg, 0, ADD, total, sizeof *total);
  }
  return BW_CONTINUE;
}

static const bw_behaviour_t counter = {
    .name = "counter", .state_size = sizeof(uint64_t), .handle = counter_handle};
static const bw_child_spec_t kids[] = {{.id = "counter", .behaviour = &counter}};
static const bw_sup_spec_t tree = {
    .name = "root", .strategy = BW_ONE_FOR_ONE, .children = kids, .nchildren = 1};

/* Calls the counter's current pid (it changes when it is restarted). */
static int add(bw_runtime_t *rt, bw_pid_t sup, uint64_t *total) {
  bw_pid_t pid;
  bw_reply_t r;
  int rc = bw_sup_child_pid(rt, sup, "counter", &pid);
  if (rc == 0)
    rc = bw_call(rt, pid, ADD, NULL, 0, 5000, &r);
  if (rc == 0 && r.len == sizeof *total)
    memcpy(total, r.data, sizeof *total);
  return rc;
}

int main(void) {
  bw_runtime_t *rt = NULL;
  bw_pid_t sup = BW_PID_NONE, pid = BW_PID_NONE;
  uint64_t before = 0, after = 0;
  bw_child_info_t info;
  size_t n = 0;

  int rc = bw_runtime_create(NULL, &rt);
  if (rc == 0)
    rc = bw_supervisor_start(rt, &tree, &sup, NULL);
  if (rc == 0 && (rc = add(rt, sup, &before)) == 0 && (rc = add(rt, sup, &before)) == 0)
    rc = bw_sup_child_pid(rt, sup, "counter", &pid);
  if (rc == 0)
    rc = bw_send(rt, pid, BOOM, NULL, 0);
  if (rc == 0)
    rc = bw_wait_exit(rt, pid, 5000, NULL);
  /* The supervisor may still be restarting it: retry briefly. */
  for (int i = 0; rc == 0 && i < 500; i++) {
    rc = add(rt, sup, &after);
    if (rc != BW_ERESTARTING && rc != BW_ENOPROC)
      break;
    rc = 0;
  }
  if (rc == 0)
    rc = bw_sup_which_children(rt, sup, &info, 1, &n);
  bw_runtime_destroy(rt);

  if (rc != 0) {
    fprintf(stderr, "external: %s (%s)\n", bw_err_name(rc), bw_strerror(rc));
    return 1;
  }
  if (before != 2 || after != 1 || n != 1 || info.restarts != 1) {
    fprintf(stderr, "external: unexpected: before %llu, after %llu, restarts %u\n",
            (unsigned long long)before, (unsigned long long)after, info.restarts);
    return 1;
  }
  printf("external: ok: bulwark %d.%d.%d; counter crashed at 2, restarted once, counts from 1\n",
         BW_VERSION_MAJOR, BW_VERSION_MINOR, BW_VERSION_PATCH);
  return 0;
}
