/* A minimal TAP producer for the C unit tests (prove reads it). */
#ifndef SOCKD_TAP_H
#define SOCKD_TAP_H

#include <stdbool.h>

/* Records one test; prints "ok N - name" or "not ok N - name". */
bool tap_ok(bool cond, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "# ..." */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the plan "1..N"; returns the exit status (0 when all passed). */
int tap_done(void);

#endif
