/*
 * bulwark: a supervised actor runtime for C.
 * The umbrella header: includes every public module.
 */
#ifndef BULWARK_H
#define BULWARK_H

#define BW_VERSION_MAJOR 0
#define BW_VERSION_MINOR 1
#define BW_VERSION_PATCH 0

#include "bulwark/error.h"
#include "bulwark/types.h"
#include "bulwark/runtime.h"
#include "bulwark/actor.h"
#include "bulwark/message.h"
#include "bulwark/inbox.h"
#include "bulwark/reply.h"
#include "bulwark/timer.h"
#include "bulwark/registry.h"
#include "bulwark/dead_letter.h"
#include "bulwark/event.h"
#include "bulwark/log.h"
#include "bulwark/io.h"
#include "bulwark/supervisor.h"
#include "bulwark/ratelimit.h"
#include "bulwark/breaker.h"
#include "bulwark/bulkhead.h"
#include "bulwark/retry.h"
#include "bulwark/policy.h"
#include "bulwark/resilience.h"
#include "bulwark/health.h"
#include "bulwark/http.h"
#include "bulwark/tree.h"
#include "bulwark/metrics.h"
#include "bulwark/observer.h"
#include "bulwark/node.h"

#endif
