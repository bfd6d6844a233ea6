/*
 * bulwark: nodes without libnats, built instead of node.c and the other
 * transport files: bw_node_start says BW_ENOTSUP and every other call says
 * what it would say with no node started.
 */
#include <stddef.h>

#include "bulwark/node.h"
#include "node/node_internal.h"
#include "runtime/internal.h"

int bw_node_start(bw_runtime_t *rt, const bw_node_opts_t *opts) {
  if (rt == NULL || opts == NULL)
    return BW_EINVAL;
  return BW_ENOTSUP;
}
int bw_node_stop(bw_runtime_t *rt) { return rt == NULL ? BW_EINVAL : BW_ESTATE; }
int bw_node_wait(bw_runtime_t *rt, const char *name, uint64_t timeout_ms, unsigned *id) {
  (void)timeout_ms;
  (void)id;
  return rt == NULL || name == NULL ? BW_EINVAL : BW_ESTATE;
}
bool bw_node_connected(bw_runtime_t *rt, unsigned id) {
  (void)rt;
  (void)id;
  return false;
}
int bw_node_stats(bw_runtime_t *rt, bw_node_stats_t *out) {
  return rt == NULL || out == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw__node_sever(bw_runtime_t *rt) {
  (void)rt;
  return BW_ESTATE;
}
int bw_node_register(bw_runtime_t *rt, const char *name, bw_pid_t pid) {
  (void)pid;
  return rt == NULL || name == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw_node_export(bw_runtime_t *rt, const char *name, const bw_behaviour_t *b) {
  return rt == NULL || name == NULL || b == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw_node_serializer(bw_runtime_t *rt, uint32_t type, const bw_serializer_t *s) {
  (void)type;
  return rt == NULL || s == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw_node_unregister(bw_runtime_t *rt, const char *name) {
  return rt == NULL || name == NULL ? BW_EINVAL : BW_ESTATE;
}
int bw_node_whereis(bw_runtime_t *rt, const char *name, bw_pid_t *out) {
  return rt == NULL || name == NULL || out == NULL ? BW_EINVAL : BW_ESTATE;
}
