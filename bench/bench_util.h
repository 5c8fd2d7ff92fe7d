/* What the load generators of bench/ share (loadgen.c, soakgen.c): each
 * is built alone from one source file by its script, so these are
 * static inline here rather than an object to link. */
#ifndef SOCKD_BENCH_UTIL_H
#define SOCKD_BENCH_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* "PROGRAM: message" on stderr, exit 2 (a harness error, not a result). */
static inline void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static inline void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", program_invocation_short_name);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* Monotonic seconds. */
static inline double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
