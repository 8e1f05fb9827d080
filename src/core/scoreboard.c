/* Shared-memory scoreboard. */
#include "scoreboard.h"

#include <string.h>
#include <sys/mman.h>

static size_t sb_size(unsigned nslots)
{
    return sizeof(mpm__scoreboard_t) + (size_t)nslots * sizeof(mpm__sb_slot_t);
}

mpm__scoreboard_t *mpm__sb_create(unsigned nslots)
{
    void *p = mmap(NULL, sb_size(nslots), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    mpm__scoreboard_t *sb = p; /* mmap gives zeroed pages: every slot DEAD */
    sb->nslots = nslots;
    return sb;
}

void mpm__sb_destroy(mpm__scoreboard_t *sb)
{
    if (sb)
        munmap(sb, sb_size(sb->nslots));
}

void mpm__sb_slot_init(mpm__sb_slot_t *s, unsigned generation)
{
    atomic_store(&s->pid, 0);
    atomic_store(&s->generation, generation);
    atomic_store(&s->busy, 0);
    atomic_store(&s->idle, 0);
    atomic_store(&s->parked, 0);
    atomic_store(&s->connections, 0);
    atomic_store(&s->requests, 0);
    atomic_store(&s->last_used_ms, 0);
    atomic_store(&s->state, MPM__SB_STARTING);
}

const char *mpm__sb_state_name(int state)
{
    static const char *const names[] = {"dead",    "starting",  "ready",   "reading",
                                        "writing", "keepalive", "closing", "graceful"};
    if (state < 0 || state >= (int)(sizeof(names) / sizeof(names[0])))
        return "unknown";
    return names[state];
}
