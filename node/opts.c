/*
 * bulwark: the node options' defaults (include/bulwark/node.h), built with
 * or without libnats.
 */
#include <string.h>

#include "bulwark/node.h"

void bw_node_opts_init(bw_node_opts_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof(*opts));
  opts->cluster = "bulwark";
  opts->heartbeat_ms = 250;
  opts->heartbeat_misses = 4;
  opts->connect_timeout_ms = 5000;
}
