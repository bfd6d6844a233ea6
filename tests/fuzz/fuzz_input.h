/*
 * Reading a fuzzer's bytes as a stream of choices, for the harnesses in
 * tests/fuzz. Every read succeeds: past the end it yields zeros, so any
 * input (the empty one too) is a complete, deterministic program, and
 * libFuzzer's mutations of a byte change one choice.
 */
#ifndef BW_TESTS_FUZZ_INPUT_H
#define BW_TESTS_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct fz {
  const uint8_t *p;
  size_t n, off;
} fz_t;

static inline fz_t fz_init(const uint8_t *data, size_t size) {
  fz_t f = {data, size, 0};
  return f;
}

static inline int fz_done(const fz_t *f) { return f->off >= f->n; }

static inline uint8_t fz_u8(fz_t *f) { return f->off < f->n ? f->p[f->off++] : 0; }

static inline uint16_t fz_u16(fz_t *f) {
  uint16_t v = fz_u8(f);
  return (uint16_t)(v | (uint16_t)fz_u8(f) << 8);
}

static inline uint32_t fz_u32(fz_t *f) {
  uint32_t v = fz_u16(f);
  return v | (uint32_t)fz_u16(f) << 16;
}

static inline uint64_t fz_u64(fz_t *f) {
  uint64_t v = fz_u32(f);
  return v | (uint64_t)fz_u32(f) << 32;
}

/* A value in [0, n) (n > 0). */
static inline unsigned fz_below(fz_t *f, unsigned n) { return fz_u8(f) % n; }

static inline int fz_bool(fz_t *f) { return fz_u8(f) & 1; }

/* Copies up to max bytes (a length byte, then the bytes) into buf, which
 * holds max + 1, and NUL-terminates it; a NUL among the bytes shortens the
 * string, as it would for a C caller. Returns the bytes copied. */
static inline size_t fz_str(fz_t *f, char *buf, size_t max) {
  size_t len = fz_u8(f);
  if (len > max)
    len = max;
  if (len > f->n - (f->off < f->n ? f->off : f->n))
    len = f->off < f->n ? f->n - f->off : 0;
  if (len > 0)
    memcpy(buf, f->p + f->off, len);
  f->off += len;
  buf[len] = '\0';
  return len;
}

#endif
