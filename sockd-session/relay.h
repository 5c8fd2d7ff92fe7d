/* The zero-copy relay: splice(2) through one pipe per direction. */
#ifndef SOCKD_RELAY_H
#define SOCKD_RELAY_H

#include <stdint.h>

struct relay_pipes {
	int up[2];     /* client -> target */
	int down[2];   /* target -> client */
};

/* Creates both pipes (before the privilege drop, so the shared per-user
 * pipe budget of the unprivileged user is not charged) and grows them to
 * 1 MiB where allowed.  Returns 0 or -1. */
int relay_pipes_open(struct relay_pipes *p);

struct relay_stats {
	uint64_t from_client, to_client;
	const char *reason;    /* why it ended */
};

/* Relays between CLIENT and TARGET (both non-blocking) until both
 * directions reached end of file and were drained, an error, or IO_TIMEOUT
 * seconds without traffic (0 = never).  A half-close is passed on: the
 * client's shutdown(SHUT_WR) becomes ours towards the target, and the
 * other direction keeps flowing.  FIN_WAIT > 0 bounds the time spent
 * half-closed. */
void relay_run(int client, int target, struct relay_pipes *p, int io_timeout,
	       int fin_wait, struct relay_stats *st);

#endif
