/* The scoreboard: per-child statistics in shared memory, written by each
 * child for itself and read by the master and by mpm_server_stats().
 *
 * It is statistics only. The master keeps pids, slots and control channels
 * in its private memory; what it reads here (idle counts) it clamps to what
 * it knows, so a child that scribbles over the scoreboard can skew a
 * maintenance decision but never make the master signal a foreign pid or
 * index out of bounds. */
#ifndef MPM_CORE_SCOREBOARD_H
#define MPM_CORE_SCOREBOARD_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum mpm__sb_state {
    MPM__SB_DEAD = 0, /* slot free */
    MPM__SB_STARTING, /* forked, running init hooks */
    MPM__SB_READY,    /* idle, waiting to accept */
    MPM__SB_READING,  /* reading a request */
    MPM__SB_WRITING,  /* running the handler / writing the response */
    MPM__SB_KEEPALIVE,/* waiting for the next request on a connection */
    MPM__SB_CLOSING,  /* lingering close */
    MPM__SB_GRACEFUL  /* finishing up before exit */
} mpm__sb_state_t;

typedef struct mpm__sb_slot {
    atomic_int pid;
    atomic_uint generation;
    atomic_int state;            /* mpm__sb_state_t */
    atomic_uint busy;            /* units (threads) serving */
    atomic_uint idle;            /* units ready for a connection */
    atomic_uint parked;          /* keep-alive connections held by no unit */
    atomic_uint_fast64_t connections;
    atomic_uint_fast64_t requests;
    atomic_int_fast64_t last_used_ms; /* monotonic ms of the last request */
} mpm__sb_slot_t;

typedef struct mpm__scoreboard {
    unsigned nslots;
    atomic_uint generation;
    /* Counts of children that exited, so totals survive slot reuse. */
    atomic_uint_fast64_t retired_connections;
    atomic_uint_fast64_t retired_requests;
    mpm__sb_slot_t slot[];
} mpm__scoreboard_t;

/* Maps a scoreboard of nslots in shared anonymous memory (inherited by
 * children across fork). Returns NULL on failure (errno set). */
mpm__scoreboard_t *mpm__sb_create(unsigned nslots);
void mpm__sb_destroy(mpm__scoreboard_t *sb);

/* Resets slot i for a new child of `generation` about to start. */
void mpm__sb_slot_init(mpm__sb_slot_t *s, unsigned generation);

/* Sets the state of the calling unit's slot. */
static inline void mpm__sb_set_state(mpm__sb_slot_t *s, mpm__sb_state_t st)
{
    if (s)
        atomic_store_explicit(&s->state, (int)st, memory_order_relaxed);
}

const char *mpm__sb_state_name(int state);

#endif
