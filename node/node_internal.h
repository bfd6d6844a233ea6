/*
 * bulwark internal: node-layer hooks for tests.
 */
#ifndef BW_NODE_INTERNAL_H
#define BW_NODE_INTERNAL_H

#include "bulwark/runtime.h"

/* Cuts this node off as a crashed process would be: no goodbye, no more
 * heartbeats or frames in or out, nothing told to local actors. Other
 * nodes find out by the silence. Returns 0, BW_ESTATE (not running). */
int bw__node_sever(bw_runtime_t *rt);

#endif
