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

/* One unit that serves connections: a prefork process or a worker thread. */
typedef struct mpm__sb_worker {
    atomic_int state;            /* mpm__sb_state_t */
    atomic_uint_fast64_t connections;
    atomic_uint_fast64_t requests;
    atomic_int_fast64_t last_used_ms; /* monotonic ms of the last request */
} mpm__sb_worker_t;

/* One child process. */
typedef struct mpm__sb_slot {
    atomic_int pid;
    atomic_uint generation;
    atomic_int state;            /* mpm__sb_state_t of the process as a whole */
    atomic_uint busy;            /* units serving */
    atomic_uint idle;            /* units ready for a connection */
    atomic_uint parked;          /* keep-alive connections held by no unit */
    /* event: connections the child's loop holds in each other state. */
    atomic_uint reading;         /* reading a request head (or a small body) */
    atomic_uint writing;         /* write completion: a response's tail */
    atomic_uint lingering;       /* lingering close */
} mpm__sb_slot_t;

typedef struct mpm__scoreboard {
    unsigned nslots;
    unsigned workers_per_slot;   /* 1 for prefork, ThreadLimit for threaded */
    mpm__sb_worker_t *workers;   /* nslots * workers_per_slot, after the slots */
    atomic_uint generation;
    /* Counts of children that exited, so totals survive slot reuse. */
    atomic_uint_fast64_t retired_connections;
    atomic_uint_fast64_t retired_requests;
    /* The last request id handed out (mpm_request_id()): shared, so ids are
     * unique across the server's processes. */
    atomic_uint_fast64_t last_request_id;
    mpm__sb_slot_t slot[];
} mpm__scoreboard_t;

/* Maps a scoreboard of nslots children with workers_per_slot units each in
 * shared anonymous memory (inherited by children across fork). Returns NULL
 * on failure (errno set). */
mpm__scoreboard_t *mpm__sb_create(unsigned nslots, unsigned workers_per_slot);

/* Unit t of child slot i. */
static inline mpm__sb_worker_t *mpm__sb_worker(mpm__scoreboard_t *sb, unsigned i, unsigned t)
{
    return &sb->workers[(size_t)i * sb->workers_per_slot + t];
}

/* Sums the units' counters of child slot i. */
void mpm__sb_slot_totals(mpm__scoreboard_t *sb, unsigned i, uint64_t *connections,
                         uint64_t *requests, int64_t *last_used_ms);
void mpm__sb_destroy(mpm__scoreboard_t *sb);

/* Resets child slot i (and its units) for a new child of `generation`. */
void mpm__sb_slot_init(mpm__scoreboard_t *sb, unsigned i, unsigned generation);

/* Sets the state of a child or of a unit. */
static inline void mpm__sb_set_state(mpm__sb_slot_t *s, mpm__sb_state_t st)
{
    atomic_store_explicit(&s->state, (int)st, memory_order_relaxed);
}
static inline void mpm__sb_set_worker_state(mpm__sb_worker_t *w, mpm__sb_state_t st)
{
    atomic_store_explicit(&w->state, (int)st, memory_order_relaxed);
}

const char *mpm__sb_state_name(int state);

#endif
