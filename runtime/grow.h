/*
 * bulwark internal: growing an array by doubling, with the overflow checks
 * in one place (runtime/grow.c). Every folder's growable arrays use it:
 * links, the registry, a supervisor's children and jobs, a node's tables,
 * a policy's executors.
 */
#ifndef BW_RUNTIME_GROW_H
#define BW_RUNTIME_GROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Makes room for element n (0-based) of *arr, an array of *cap elements of
 * elem bytes: nothing if n < *cap, else a realloc to twice *cap (first when
 * *cap is 0). Returns false, and leaves *arr and *cap as they were, when
 * memory runs out or the new size would not fit in uint32_t elements or
 * size_t bytes. O(1) amortised per element. */
bool bw__grow(void **arr, uint32_t *cap, uint32_t n, size_t elem, uint32_t first);

#endif
