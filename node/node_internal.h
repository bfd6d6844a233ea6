/*
 * bulwark internal: node-layer hooks for tests.
 */
#ifndef BW_NODE_INTERNAL_H
#define BW_NODE_INTERNAL_H

#include "bulwark/supervisor.h"

/* Cuts this node off as a crashed process would be: no goodbye, no more
 * heartbeats or frames in or out, nothing told to local actors. Other
 * nodes find out by the silence. Returns 0, BW_ESTATE (not running). */
int bw__node_sever(bw_runtime_t *rt);

/* For a supervisor (in its handler): asks the first connected node of
 * rc->nodes to start the child, linked to the calling actor; *ref is the
 * request's. The answer is a reply from the child's pid (status 0) after
 * the child's LINK, or a reply with an error status; or a
 * BW_MSG_REQUEST_TIMEOUT. Returns 0, BW_ENOCONN (no node connected),
 * BW_ENOTSUP (no node layer), or bw_request's codes. */
int bw__node_remote_spawn(bw_ctx_t *ctx, const bw_remote_child_t *rc, uint64_t *ref);

#endif
