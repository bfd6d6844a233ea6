/*
 * bw-bench's command line: the options, the benchmarks the arguments
 * select, the --param overrides and what each benchmark's parameters
 * resolve to, and --list. A bad command line ends the process here, with
 * a message and EXIT_USAGE, before anything runs.
 */
#include "runner_internal.h"

#include <fnmatch.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --same-band default: runs on a quiet machine differ by a few percent. */
#define SAME_BAND_PCT 5.0

void runner_opts_init(options_t *o)
{
  memset(o, 0, sizeof *o);
  o->runs = 5;
  o->timeout_ms = 120000;
  o->same_band_pct = SAME_BAND_PCT;
  o->fail_over_pct = -1;
}

void runner_opts_free(options_t *o)
{
  free(o->ov);
  o->ov = NULL;
  o->nov = 0;
}

static void usage(FILE *f)
{
  fprintf(f,
"usage: %s [options] [NAME|GLOB ...]\n"
"\n"
"Runs bulwark's benchmarks (all of them, or those whose names match one of\n"
"the shell-style globs) and reports the median of several runs, each in a\n"
"fresh runtime, with the machine they ran on.\n"
"\n"
"options:\n"
"  --list               list the (selected) benchmarks, their parameters\n"
"                       and units\n"
"  --runs N             measured runs per benchmark (default 5; median kept)\n"
"  --quick              small sizes: the whole suite in well under a minute\n"
"  --param KEY=VALUE    override a parameter of every selected benchmark\n"
"                       that has it; NAME.KEY=VALUE for one benchmark.\n"
"                       VALUE is an integer, with an optional k, M or G\n"
"                       (x1000) suffix. Repeatable.\n"
"  --workers N          runtime worker threads (default 0 = online CPUs)\n"
"  --timeout SEC        watchdog per run (default 120); a run that takes\n"
"                       longer is reported as an error\n"
"  --json FILE          write the results as JSON\n"
"  --csv FILE           write every run's raw figures as CSV\n"
"  --baseline FILE      compare with a saved --json file: each benchmark\n"
"                       (matched by name and params) is faster, slower or\n"
"                       the same, with the speed-up ratio (>1 is faster)\n"
"  --same-band PCT      ratios within 1 +- PCT/100 are 'same' (default 5)\n"
"  --fail-over PCT      with --baseline: exit 3 if a benchmark is more than\n"
"                       PCT percent slower than its baseline\n"
"  --report DIR         write an SVG chart per benchmark group and an\n"
"                       index.html into DIR (created if missing)\n"
"  --check-json FILE    validate a --json file instead of running: it\n"
"                       parses, has a result for every selected benchmark,\n"
"                       none failed, every figure positive; exit 0 or 1\n"
"  --force              report figures even from a sanitizer or unoptimised\n"
"                       build (they are marked as such)\n"
"  --no-fork            run in this process instead of a child per run\n"
"                       (for debuggers; no crash isolation)\n"
"  -h, --help           this help\n"
"\n"
"exit status: 0 all passed; 1 a benchmark failed (--check-json: the file\n"
"is bad); 2 bad usage or a refused build; 3 slower than the baseline by\n"
"more than --fail-over\n",
          runner_prog);
}

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 1, 2)))
#endif
static void die_usage(const char *fmt, ...)
{
  va_list ap;
  fprintf(stderr, "%s: ", runner_prog);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(try '%s --help')\n", runner_prog);
  exit(EXIT_USAGE);
}

/* Parses a non-negative integer with an optional k/M/G (x1000) suffix.
 * Returns 0, or -1 on anything else, including overflow. */
static int parse_u64(const char *s, uint64_t *out)
{
  if (*s < '0' || *s > '9')
    return -1;
  uint64_t v = 0;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  uint64_t mul = 1;
  switch (*s) {
  case '\0': break;
  case 'k': case 'K': mul = 1000u; s++; break;
  case 'm': case 'M': mul = 1000000u; s++; break;
  case 'g': case 'G': mul = 1000000000u; s++; break;
  default: return -1;
  }
  if (*s != '\0' || (v != 0 && v > UINT64_MAX / mul))
    return -1;
  *out = v * mul;
  return 0;
}

static unsigned parse_count(const char *opt, const char *s, unsigned lo,
                            unsigned hi)
{
  uint64_t v;
  if (parse_u64(s, &v) != 0 || v < lo || v > hi)
    die_usage("%s: '%s' is not an integer from %u to %u", opt, s, lo, hi);
  return (unsigned)v;
}

/* A percentage from 0 to 1000, decimals allowed. */
static double parse_pct(const char *opt, const char *s)
{
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= 0 && v <= 1000))
    die_usage("%s: '%s' is not a percentage from 0 to 1000", opt, s);
  return v;
}

static void parse_override(options_t *o, const char *arg)
{
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || eq[1] == '\0')
    die_usage("--param '%s': expected KEY=VALUE or NAME.KEY=VALUE", arg);
  override_t ov;
  memset(&ov, 0, sizeof ov);
  ov.arg = arg;
  const char *key = arg;
  const char *dot = memchr(arg, '.', (size_t)(eq - arg));
  if (dot) {
    if (dot == arg || (size_t)(dot - arg) >= sizeof ov.scope)
      die_usage("--param '%s': bad benchmark name", arg);
    memcpy(ov.scope, arg, (size_t)(dot - arg));
    key = dot + 1;
  }
  if (key == eq || (size_t)(eq - key) >= sizeof ov.key)
    die_usage("--param '%s': bad parameter name", arg);
  memcpy(ov.key, key, (size_t)(eq - key));
  if (parse_u64(eq + 1, &ov.value) != 0)
    die_usage("--param '%s': '%s' is not a non-negative integer "
              "(k, M, G suffixes allowed)",
              arg, eq + 1);
  override_t *grown = realloc(o->ov, (o->nov + 1) * sizeof *o->ov);
  if (!grown) {
    fprintf(stderr, "%s: out of memory\n", runner_prog);
    exit(EXIT_FAILED);
  }
  o->ov = grown;
  o->ov[o->nov++] = ov;
}

/* The benchmarks the arguments' globs match; all of them if none is given.
 * A glob that matches nothing is a usage error. */
static void select_benches(options_t *o, int argc, char **argv)
{
  bool any = false;
  for (int i = 0; i < argc; i++) {
    bool matched = false;
    for (size_t b = 0; b < runner_nbench; b++) {
      if (fnmatch(argv[i], runner_benches[b]->name, 0) == 0) {
        o->selected[b] = true;
        matched = true;
      }
    }
    if (!matched)
      die_usage("no benchmark matches '%s' (see --list)", argv[i]);
    any = true;
  }
  if (!any)
    for (size_t b = 0; b < runner_nbench; b++)
      o->selected[b] = true;
}

enum { O_LIST = 256, O_RUNS, O_QUICK, O_PARAM, O_WORKERS, O_TIMEOUT,
       O_JSON, O_CSV, O_FORCE, O_NOFORK, O_BASELINE, O_SAME_BAND,
       O_FAIL_OVER, O_REPORT, O_CHECK_JSON };

static const struct option longopts[] = {
    {"list", no_argument, NULL, O_LIST},
    {"runs", required_argument, NULL, O_RUNS},
    {"quick", no_argument, NULL, O_QUICK},
    {"param", required_argument, NULL, O_PARAM},
    {"workers", required_argument, NULL, O_WORKERS},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"json", required_argument, NULL, O_JSON},
    {"csv", required_argument, NULL, O_CSV},
    {"force", no_argument, NULL, O_FORCE},
    {"no-fork", no_argument, NULL, O_NOFORK},
    {"baseline", required_argument, NULL, O_BASELINE},
    {"same-band", required_argument, NULL, O_SAME_BAND},
    {"fail-over", required_argument, NULL, O_FAIL_OVER},
    {"report", required_argument, NULL, O_REPORT},
    {"check-json", required_argument, NULL, O_CHECK_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option getopt_long returned (c), its value in optarg. */
static void take_option(options_t *o, int c, char **argv, bool *list)
{
  switch (c) {
  case O_LIST: *list = true; break;
  case O_RUNS: o->runs = parse_count("--runs", optarg, 1, 1000); break;
  case O_QUICK: o->quick = true; break;
  case O_PARAM: parse_override(o, optarg); break;
  case O_WORKERS:
    o->workers = parse_count("--workers", optarg, 0, 256);
    break;
  case O_TIMEOUT:
    o->timeout_ms = 1000u * parse_count("--timeout", optarg, 1, 86400);
    break;
  case O_JSON: o->json_path = optarg; break;
  case O_CSV: o->csv_path = optarg; break;
  case O_FORCE: o->force = true; break;
  case O_NOFORK: o->no_fork = true; break;
  case O_BASELINE: o->baseline_path = optarg; break;
  case O_SAME_BAND:
    o->same_band_pct = parse_pct("--same-band", optarg);
    break;
  case O_FAIL_OVER:
    o->fail_over_pct = parse_pct("--fail-over", optarg);
    break;
  case O_REPORT: o->report_dir = optarg; break;
  case O_CHECK_JSON: o->check_json_path = optarg; break;
  case 'h': usage(stdout); exit(0);
  case ':': die_usage("option '%s' needs a value", argv[optind - 1]);
  default: die_usage("unknown option '%s'", argv[optind - 1]);
  }
}

void runner_parse_args(options_t *o, int argc, char **argv, bool *list)
{
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1)
    take_option(o, c, argv, list);
  select_benches(o, argc - optind, argv + optind);
  if (o->fail_over_pct >= 0 && !o->baseline_path)
    die_usage("--fail-over needs --baseline");
}

void runner_resolve_params(options_t *o, size_t b, uint64_t *param)
{
  const bench_t *bench = runner_benches[b];
  for (size_t i = 0; i < BENCH_MAX_PARAMS && bench->params[i].key; i++) {
    const bench_param_t *p = &bench->params[i];
    param[i] = o->quick ? p->quick : p->def;
    for (size_t k = 0; k < o->nov; k++) {
      override_t *ov = &o->ov[k];
      if (strcmp(ov->key, p->key) != 0)
        continue;
      if (ov->scope[0] && strcmp(ov->scope, bench->name) != 0)
        continue;
      if (ov->value < p->min || ov->value > p->max)
        die_usage("--param %s: %s needs %s from %" PRIu64 " to %" PRIu64,
                  ov->arg, bench->name, p->key, p->min, p->max);
      param[i] = ov->value;
      ov->used = true;
    }
  }
}

void runner_check_overrides(const options_t *o)
{
  for (size_t k = 0; k < o->nov; k++) {
    const override_t *ov = &o->ov[k];
    if (ov->used)
      continue;
    if (ov->scope[0]) {
      int b = runner_bench_index(ov->scope);
      if (b < 0)
        die_usage("--param %s: there is no benchmark '%s' (see --list)",
                  ov->arg, ov->scope);
      if (!o->selected[b])
        die_usage("--param %s: benchmark %s is not selected", ov->arg,
                  ov->scope);
      die_usage("--param %s: %s has no parameter '%s' (see --list)", ov->arg,
                ov->scope, ov->key);
    }
    die_usage("--param %s: no selected benchmark has a parameter '%s' "
              "(see --list)",
              ov->arg, ov->key);
  }
}

void runner_format_params(const bench_t *b, const uint64_t *param, char *buf,
                          size_t cap)
{
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < BENCH_MAX_PARAMS && b->params[i].key; i++) {
    int w = snprintf(buf + n, cap - n, "%s%s=%" PRIu64, i ? " " : "",
                     b->params[i].key, param[i]);
    if (w < 0 || (size_t)w >= cap - n)
      break;
    n += (size_t)w;
  }
}

void runner_list(const options_t *o)
{
  for (size_t b = 0; b < runner_nbench; b++) {
    const bench_t *bench = runner_benches[b];
    if (!o->selected[b])
      continue;
    printf("%-12s %s\n", bench->name, bench->summary);
    printf("%-12s unit: %s (%s is better)\n", "", bench->unit,
           bench->higher_is_better ? "higher" : "lower");
    for (size_t i = 0; i < BENCH_MAX_PARAMS && bench->params[i].key; i++) {
      const bench_param_t *p = &bench->params[i];
      printf("%-12s %s=%" PRIu64 " (--quick %" PRIu64 ")  %s\n", "", p->key,
             p->def, p->quick, p->doc);
    }
  }
}
