/*
 * bulwark: the HTTP observer without libmicrohttpd, built instead of
 * observer_mhd.c and observer_conns.c: bw_observer_start says BW_ENOTSUP.
 * The options, the handle (observer.c) and the router (observer_route.c)
 * are built either way: the fuzz harness drives the router directly.
 */
#include "bulwark/bulwark.h"
#include "bulwark/observer.h"

int bw_observer_start(bw_runtime_t *rt, const bw_observer_opts_t *opts, bw_observer_t **out) {
  if (rt == NULL || opts == NULL || out == NULL)
    return BW_EINVAL;
  return BW_ENOTSUP;
}
uint16_t bw_observer_port(const bw_observer_t *o) {
  (void)o;
  return 0;
}
int bw_observer_counts(const bw_observer_t *o, uint64_t *ok, uint64_t *nf, uint64_t *bm,
                       uint64_t *err) {
  (void)o, (void)ok, (void)nf, (void)bm, (void)err;
  return BW_EINVAL;
}
int bw_observer_stats(const bw_observer_t *o, bw_observer_stats_t *out) {
  (void)o, (void)out;
  return BW_EINVAL;
}
int bw_observer_stop(bw_observer_t *o) {
  (void)o;
  return 0;
}
