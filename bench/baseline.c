/*
 * Results files read back (baseline.h).
 */
#include "baseline.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

static const char *str_of(const json_t *obj, const char *key)
{
  const json_t *v = json_get(obj, key);
  return v && v->kind == JSON_STRING ? v->string : NULL;
}

/* A parameter value as the runner writes it: a non-negative integer. */
static bool integral(const json_t *v)
{
  return v->kind == JSON_NUMBER && v->number >= 0 && v->number < 1.8e19 &&
         floor(v->number) == v->number;
}

/* "key=value key=value", in file order, as the runner formats params.
 * Returns 0, or -1 if a value is not a non-negative integer. */
static int format_params(const json_t *params, char *buf, size_t cap)
{
  size_t n = 0;
  buf[0] = '\0';
  for (const json_t *m = params->child; m; m = m->next) {
    if (!integral(m))
      return -1;
    int w = snprintf(buf + n, cap - n, "%s%s=%" PRIu64, n ? " " : "", m->key,
                     (uint64_t)m->number);
    if (w < 0 || (size_t)w >= cap - n)
      return -1;
    n += (size_t)w;
  }
  return 0;
}

int bench_baseline_load(const char *path, bench_baseline_t *b, char *err,
                        size_t cap)
{
  memset(b, 0, sizeof *b);
  snprintf(b->path, sizeof b->path, "%s", path);
  char perr[200];
  json_t *root = json_parse_file(path, perr, sizeof perr);
  if (!root) {
    snprintf(err, cap, "%s: %s", path, perr);
    return -1;
  }
  int ret = -1;
  const json_t *machine = json_get(root, "machine");
  const json_t *results = json_get(root, "results");
  if (!machine || machine->kind != JSON_OBJECT || !results ||
      results->kind != JSON_ARRAY) {
    snprintf(err, cap, "%s: not a bw-bench results file (no \"machine\" "
                       "object or \"results\" array)",
             path);
    goto out;
  }
  const char *date = str_of(machine, "date");
  snprintf(b->date, sizeof b->date, "%s", date ? date : "?");
  const json_t *cores = json_get(machine, "cores");
  const char *cpu = str_of(machine, "cpu"), *kernel = str_of(machine, "kernel");
  const char *cc = str_of(machine, "compiler");
  const char *bt = str_of(machine, "build_type");
  snprintf(b->machine, sizeof b->machine, "%s, %.0f cores, %s, %s, build %s",
           cpu ? cpu : "?",
           cores && cores->kind == JSON_NUMBER ? cores->number : 0.0,
           kernel ? kernel : "?", cc ? cc : "?", bt && *bt ? bt : "(none)");

  size_t n = json_count(results);
  b->entry = calloc(n ? n : 1, sizeof *b->entry);
  if (!b->entry) {
    snprintf(err, cap, "out of memory");
    goto out;
  }
  size_t i = 0;
  for (const json_t *r = results->child; r; r = r->next, i++) {
    bench_base_entry_t *e = &b->entry[i];
    const char *name = str_of(r, "name"), *unit = str_of(r, "unit");
    const json_t *params = json_get(r, "params");
    const json_t *hib = json_get(r, "higher_is_better");
    if (r->kind != JSON_OBJECT || !name || !*name || !unit || !params ||
        params->kind != JSON_OBJECT || !hib || hib->kind != JSON_BOOL) {
      snprintf(err, cap,
               "%s: result %zu lacks a name, params, unit or "
               "higher_is_better",
               path, i + 1);
      goto out;
    }
    if (strlen(name) >= sizeof e->name || strlen(unit) >= sizeof e->unit ||
        format_params(params, e->params, sizeof e->params) != 0) {
      snprintf(err, cap, "%s: result %zu (%s): name, unit or params not as "
                         "the runner writes them",
               path, i + 1, name);
      goto out;
    }
    memcpy(e->name, name, strlen(name) + 1);
    memcpy(e->unit, unit, strlen(unit) + 1);
    e->higher_is_better = hib->boolean;
    const json_t *med = json_get(r, "median"), *mn = json_get(r, "min");
    const json_t *mx = json_get(r, "max");
    e->ok = !json_get(r, "error") && med && med->kind == JSON_NUMBER && mn &&
            mn->kind == JSON_NUMBER && mx && mx->kind == JSON_NUMBER;
    if (e->ok) {
      e->median = med->number;
      e->min = mn->number;
      e->max = mx->number;
    }
  }
  b->n = n;
  ret = 0;
out:
  json_free(root);
  if (ret != 0)
    bench_baseline_free(b);
  return ret;
}

void bench_baseline_free(bench_baseline_t *b)
{
  free(b->entry);
  b->entry = NULL;
  b->n = 0;
}

/* --- --check-json --------------------------------------------------------- */

typedef struct checker {
  FILE *out;
  const char *path;
  int problems;
} checker_t;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void problem(checker_t *c, const char *fmt, ...)
{
  va_list ap;
  fprintf(c->out, "%s: ", c->path);
  va_start(ap, fmt);
  vfprintf(c->out, fmt, ap);
  va_end(ap);
  fputc('\n', c->out);
  c->problems++;
}

static bool figure_ok(double v, bool higher_is_better)
{
  return isfinite(v) && (higher_is_better ? v > 0 : v >= 0);
}

static void check_result(checker_t *c, const json_t *r, size_t idx)
{
  const char *name = str_of(r, "name");
  char label[96];
  snprintf(label, sizeof label, "result %zu (%s)", idx + 1,
           name ? name : "no name");
  if (r->kind != JSON_OBJECT || !name || !*name) {
    problem(c, "%s: not an object with a name", label);
    return;
  }
  const json_t *params = json_get(r, "params");
  if (!params || params->kind != JSON_OBJECT)
    problem(c, "%s: no params object", label);
  else
    for (const json_t *m = params->child; m; m = m->next)
      if (!integral(m))
        problem(c, "%s: parameter %s is not a non-negative integer", label,
                m->key);
  const char *unit = str_of(r, "unit");
  if (!unit || !*unit)
    problem(c, "%s: no unit", label);
  const json_t *hib = json_get(r, "higher_is_better");
  if (!hib || hib->kind != JSON_BOOL) {
    problem(c, "%s: no higher_is_better boolean", label);
    return;
  }
  const char *error = str_of(r, "error");
  if (json_get(r, "error")) {
    problem(c, "%s: failed: %s", label, error ? error : "(no text)");
    return;
  }
  const char *keys[] = {"median", "min", "max"};
  double fig[3];
  for (int k = 0; k < 3; k++) {
    const json_t *v = json_get(r, keys[k]);
    if (!v || v->kind != JSON_NUMBER) {
      problem(c, "%s: %s is not a number", label, keys[k]);
      return;
    }
    fig[k] = v->number;
    if (!figure_ok(fig[k], hib->boolean))
      problem(c, "%s: %s %g is not %s", label, keys[k], fig[k],
              hib->boolean ? "positive" : "non-negative");
  }
  if (!(fig[1] <= fig[0] && fig[0] <= fig[2]))
    problem(c, "%s: not min %g <= median %g <= max %g", label, fig[1], fig[0],
            fig[2]);
  const json_t *runs = json_get(r, "runs");
  if (!runs || runs->kind != JSON_ARRAY || !runs->child) {
    problem(c, "%s: no runs", label);
    return;
  }
  size_t k = 0;
  for (const json_t *v = runs->child; v; v = v->next, k++) {
    if (v->kind != JSON_NUMBER || !figure_ok(v->number, hib->boolean))
      problem(c, "%s: run %zu is not a %s number", label, k + 1,
              hib->boolean ? "positive" : "non-negative");
    else if (v->number < fig[1] || v->number > fig[2])
      problem(c, "%s: run %zu (%g) lies outside [min, max]", label, k + 1,
              v->number);
  }
}

int bench_check_json(const char *path, const char *const *expect,
                     size_t nexpect, FILE *out)
{
  checker_t c = {.out = out, .path = path};
  char perr[200];
  json_t *root = json_parse_file(path, perr, sizeof perr);
  if (!root) {
    problem(&c, "%s", perr);
    return c.problems;
  }
  if (root->kind != JSON_OBJECT) {
    problem(&c, "the top level is not an object");
    goto out;
  }
  const json_t *machine = json_get(root, "machine");
  if (!machine || machine->kind != JSON_OBJECT) {
    problem(&c, "no machine object");
  } else {
    const char *skeys[] = {"cpu", "kernel", "compiler", "build_type",
                           "sanitize", "date"};
    for (size_t k = 0; k < sizeof skeys / sizeof skeys[0]; k++)
      if (!str_of(machine, skeys[k]))
        problem(&c, "machine.%s is not a string", skeys[k]);
    const json_t *cores = json_get(machine, "cores");
    if (!cores || cores->kind != JSON_NUMBER || !(cores->number >= 1))
      problem(&c, "machine.cores is not a positive number");
  }
  const json_t *config = json_get(root, "config");
  if (!config || config->kind != JSON_OBJECT)
    problem(&c, "no config object");
  const json_t *results = json_get(root, "results");
  if (!results || results->kind != JSON_ARRAY) {
    problem(&c, "no results array");
    goto out;
  }
  size_t idx = 0;
  for (const json_t *r = results->child; r; r = r->next, idx++) {
    check_result(&c, r, idx);
    const char *name = str_of(r, "name");
    for (const json_t *q = results->child; name && q != r; q = q->next) {
      const char *other = str_of(q, "name");
      if (other && strcmp(other, name) == 0) {
        problem(&c, "result %zu: %s appears twice", idx + 1, name);
        break;
      }
    }
  }
  for (size_t k = 0; k < nexpect; k++) {
    bool found = false;
    for (const json_t *r = results->child; r && !found; r = r->next) {
      const char *name = str_of(r, "name");
      found = name && strcmp(name, expect[k]) == 0;
    }
    if (!found)
      problem(&c, "no result for %s", expect[k]);
  }
out:
  json_free(root);
  return c.problems;
}
