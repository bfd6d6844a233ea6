/*
 * What the figures ran on: the CPU, cores, kernel, compiler and build, and
 * the date, printed under the table and kept in --json; and whether this
 * build is fit to measure at all.
 */
#include "runner_internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static void trim(char *s)
{
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
    s[--n] = '\0';
  size_t lead = strspn(s, " \t");
  memmove(s, s + lead, n - lead + 1);
}

static void cpu_model(char *out, size_t cap)
{
  /* x86 says "model name"; some ARM kernels only say "Hardware" or
   * "Processor". */
  static const char *const keys[] = {"model name", "Processor", "Hardware",
                                     "cpu model"};
  snprintf(out, cap, "unknown");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f)
    return;
  char line[512];
  int best = (int)(sizeof keys / sizeof keys[0]);
  while (fgets(line, sizeof line, f)) {
    char *colon = strchr(line, ':');
    if (!colon)
      continue;
    *colon = '\0';
    trim(line);
    for (int k = 0; k < best; k++) {
      if (strcmp(line, keys[k]) == 0) {
        char *val = colon + 1;
        trim(val);
        if (*val) {
          snprintf(out, cap, "%s", val);
          best = k;
        }
        break;
      }
    }
    if (best == 0)
      break;
  }
  fclose(f);
}

void runner_machine_probe(machine_t *m, time_t start)
{
  memset(m, 0, sizeof *m);
  cpu_model(m->cpu, sizeof m->cpu);
  m->cores = sysconf(_SC_NPROCESSORS_ONLN);
  struct utsname u;
  if (uname(&u) == 0)
    snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release,
             u.machine);
  else
    snprintf(m->kernel, sizeof m->kernel, "unknown");
  snprintf(m->build_type, sizeof m->build_type, "%s",
           BW_BENCH_BUILD_TYPE[0] ? BW_BENCH_BUILD_TYPE : "(none)");
  snprintf(m->sanitize, sizeof m->sanitize, "%s",
           BW_BENCH_SANITIZE[0] ? BW_BENCH_SANITIZE
           : BENCH_SANITIZER_SEEN ? "yes"
                                  : "");
  struct tm tm;
  gmtime_r(&start, &tm);
  strftime(m->date, sizeof m->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

const char *runner_build_unfit(void)
{
  if (BW_BENCH_SANITIZE[0])
    return "this is a sanitizer build (BW_SANITIZE=" BW_BENCH_SANITIZE ")";
  if (BENCH_SANITIZER_SEEN)
    return "this build has a sanitizer compiled in";
  if (strcasecmp(BW_BENCH_BUILD_TYPE, "Debug") == 0)
    return "this is a Debug build";
  if (!BW_BENCH_LIB_OPTIMIZED)
    return "the library is built without optimisation (build type '"
           BW_BENCH_BUILD_TYPE "' and no -O in the C flags)";
  return NULL;
}
