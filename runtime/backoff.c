/*
 * bulwark: the pieces every backoff is made of (runtime/backoff.h).
 */
#include "runtime/backoff.h"

uint64_t bw__rand64(uint64_t *state) {
  /* one add and three xor-shift-multiplies */
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t bw__rand_between(uint64_t *rng, uint64_t lo, uint64_t hi) {
  uint64_t span = hi - lo + 1; /* 0 only for the whole 64-bit range */
  uint64_t r = bw__rand64(rng);
  if (span == 0)
    return r;
  return lo + (uint64_t)(((unsigned __int128)r * span) >> 64);
}

uint64_t bw__backoff_exp(uint64_t base, uint64_t mult, uint32_t n, uint64_t cap) {
  uint64_t d = base;
  if (mult > 1)
    for (uint32_t i = 0; i < n && d < cap; i++)
      d = d > cap / mult ? cap : d * mult;
  return d < cap ? d : cap;
}

uint64_t bw__backoff_jitter_down(uint64_t d, uint32_t pct, uint64_t *rng) {
  if (pct == 0)
    return d;
  if (pct > 100)
    pct = 100;
  uint64_t span = d / 100 * pct + d % 100 * pct / 100; /* d * pct / 100, no overflow */
  return d - bw__rand_between(rng, 0, span);
}
