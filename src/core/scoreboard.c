/* Shared-memory scoreboard. */
#include "scoreboard.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* Sizes are checked for overflow (size_t may be 32 bits, and slots x units
 * x entry size is a triple product): 0 means "too large". */
static size_t slots_size(unsigned nslots)
{
    size_t n;
    if (__builtin_mul_overflow((size_t)nslots, sizeof(mpm__sb_slot_t), &n) ||
        __builtin_add_overflow(n, sizeof(mpm__scoreboard_t) + 63, &n))
        return 0;
    return n & ~(size_t)63; /* units start on a cache line */
}

static size_t sb_size(unsigned nslots, unsigned per_slot)
{
    size_t head = slots_size(nslots), units;
    if (!head || __builtin_mul_overflow((size_t)nslots, (size_t)per_slot, &units) ||
        __builtin_mul_overflow(units, sizeof(mpm__sb_worker_t), &units) ||
        __builtin_add_overflow(head, units, &units))
        return 0;
    return units;
}

mpm__scoreboard_t *mpm__sb_create(unsigned nslots, unsigned workers_per_slot)
{
    size_t size = sb_size(nslots, workers_per_slot);
    if (size == 0) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    mpm__scoreboard_t *sb = p; /* mmap gives zeroed pages: every slot DEAD */
    sb->nslots = nslots;
    sb->workers_per_slot = workers_per_slot;
    sb->workers = (mpm__sb_worker_t *)((char *)p + slots_size(nslots));
    return sb;
}

void mpm__sb_destroy(mpm__scoreboard_t *sb)
{
    if (sb)
        munmap(sb, sb_size(sb->nslots, sb->workers_per_slot));
}

void mpm__sb_slot_init(mpm__scoreboard_t *sb, unsigned i, unsigned generation)
{
    mpm__sb_slot_t *s = &sb->slot[i];
    atomic_store(&s->pid, 0);
    atomic_store(&s->generation, generation);
    atomic_store(&s->busy, 0);
    atomic_store(&s->idle, 0);
    atomic_store(&s->parked, 0);
    atomic_store(&s->reading, 0);
    atomic_store(&s->writing, 0);
    atomic_store(&s->lingering, 0);
    for (unsigned t = 0; t < sb->workers_per_slot; t++) {
        mpm__sb_worker_t *w = mpm__sb_worker(sb, i, t);
        atomic_store(&w->state, MPM__SB_DEAD);
        atomic_store(&w->connections, 0);
        atomic_store(&w->requests, 0);
        atomic_store(&w->last_used_ms, 0);
    }
    atomic_store(&s->state, MPM__SB_STARTING);
}

void mpm__sb_slot_totals(mpm__scoreboard_t *sb, unsigned i, uint64_t *connections,
                         uint64_t *requests, int64_t *last_used_ms)
{
    *connections = *requests = 0;
    *last_used_ms = 0;
    for (unsigned t = 0; t < sb->workers_per_slot; t++) {
        mpm__sb_worker_t *w = mpm__sb_worker(sb, i, t);
        *connections += atomic_load_explicit(&w->connections, memory_order_relaxed);
        *requests += atomic_load_explicit(&w->requests, memory_order_relaxed);
        int64_t used = atomic_load_explicit(&w->last_used_ms, memory_order_relaxed);
        if (used > *last_used_ms)
            *last_used_ms = used;
    }
}

const char *mpm__sb_state_name(int state)
{
    static const char *const names[] = {"dead",    "starting",  "ready",   "reading",
                                        "writing", "keepalive", "closing", "graceful"};
    if (state < 0 || state >= (int)(sizeof(names) / sizeof(names[0])))
        return "unknown";
    return names[state];
}
