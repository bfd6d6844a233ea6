/*
 * bulwark: a JSON snapshot of a live supervision tree, for observers (the
 * HTTP observer's GET /tree) and debugging.
 *
 *   char buf[16384];
 *   size_t len;
 *   int rc = bw_tree_json(rt, root_sup, buf, sizeof buf, &len);
 *
 * renders, for the root supervisor and every node below it:
 *
 *   {"id":"db","pid":"4294967299","type":"worker","state":"running",
 *    "restart":"permanent","restarts":2,"mailbox":0,
 *    "breaker":{...}, "bulkhead":{...}, "health":{...}}
 *
 * with "children":[...] on supervisors. "pid" is a string: pids are 64-bit
 * and JavaScript numbers hold 53 bits. "mailbox" is null for a child that
 * is not running. The root has "id":"" (a supervisor's spec name is not
 * visible through the public API) and no "restart"/"restarts".
 *
 * Decorations: children that are breaker actors, bulkhead pools or health
 * monitors carry their state, once registered here (per runtime). A
 * breaker and a monitor are found by their handle's current pid, so a
 * restarted one is still recognised; a pool by its pid or by its child id
 * (give the id for a supervised pool: its pid changes on restart).
 */
#ifndef BULWARK_TREE_H
#define BULWARK_TREE_H

#include "bulwark/types.h"
#include "bulwark/breaker.h"
#include "bulwark/health.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Walks the tree under root (bw_sup_which_children on each supervisor: one
 * bw_call per supervisor, plus one per decorated pool) and writes it as
 * JSON, NUL-terminated, into buf. From a thread that is not a scheduler
 * thread (main, an HTTP server's thread, a dedicated-thread actor). The tree
 * is live: each supervisor is read at a slightly different moment; a
 * supervisor that exits during the walk shows "children":null and
 * "error":"noproc". *len = the JSON's length without the NUL (also on
 * BW_ETOOBIG: then the tree needs that much, as of this walk; buf holds "").
 * Returns 0; BW_EINVAL (NULL rt or len, NULL buf with cap > 0, no root);
 * BW_ETOOBIG (cap <= *len); BW_ENOMEM; or the root's bw_sup_which_children
 * code (BW_ENOPROC: not a live actor; BW_EWOULDBLOCK: on a scheduler thread;
 * BW_ESHUTDOWN).
 */
int bw_tree_json(bw_runtime_t *rt, bw_pid_t root, char *buf, size_t cap, size_t *len);

/*
 * Decorations. The registry holds at most 256 entries for all runtimes; it
 * takes a mutex (never on an actor's path), held by bw_tree_json for its
 * whole walk, so once a forget call returns no walk uses that handle any
 * more: forget a breaker or monitor before destroying it.
 * annotate returns 0 (also when already present), BW_EINVAL, BW_ELIMIT;
 * forget returns 0, BW_EINVAL, BW_ENOTFOUND.
 */
int bw_tree_annotate_breaker(bw_runtime_t *rt, bw_breaker_t *br);
int bw_tree_forget_breaker(bw_runtime_t *rt, bw_breaker_t *br);

/* pool may be BW_PID_NONE when child_id is given, and child_id NULL when
 * pool is given; at least one of the two. */
int bw_tree_annotate_bulkhead(bw_runtime_t *rt, bw_pid_t pool, const char *child_id);
int bw_tree_forget_bulkhead(bw_runtime_t *rt, bw_pid_t pool, const char *child_id);

int bw_tree_annotate_health(bw_runtime_t *rt, bw_health_t *h);
int bw_tree_forget_health(bw_runtime_t *rt, bw_health_t *h);

/* Forgets every decoration of rt (before bw_runtime_destroy). Returns the
 * number removed, or BW_EINVAL. */
int bw_tree_forget_all(bw_runtime_t *rt);

#ifdef __cplusplus
}
#endif
#endif
