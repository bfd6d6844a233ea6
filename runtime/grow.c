/*
 * bulwark: growing an array by doubling (runtime/grow.h).
 */
#include <stdint.h>
#include <stdlib.h>

#include "runtime/grow.h"

bool bw__grow(void **arr, uint32_t *cap, uint32_t n, size_t elem, uint32_t first) {
  if (n < *cap)
    return true;
  if (*cap > UINT32_MAX / 2 || elem == 0)
    return false;
  uint32_t nc = *cap ? *cap * 2 : (first ? first : 1);
  if (nc <= n || (size_t)nc > SIZE_MAX / elem)
    return false;
  void *p = realloc(*arr, (size_t)nc * elem);
  if (p == NULL)
    return false;
  *arr = p;
  *cap = nc;
  return true;
}
