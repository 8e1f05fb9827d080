/* The one core file that names every strategy: the table the master and
 * mpm_server_new() choose from. A new strategy is a folder and a line here. */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

extern const mpm__strategy_t mpm__prefork_strategy;
extern const mpm__strategy_t mpm__worker_strategy;

/* Best first: "" (the default) picks the first built entry. */
static const struct {
    const char *name;
    const mpm__strategy_t *impl; /* NULL: not built yet */
} strategies[] = {
    {"event", NULL},
    {"worker", &mpm__worker_strategy},
    {"prefork", &mpm__prefork_strategy},
};

void mpm__pool_limits_clamp(mpm__pool_limits_t *l)
{
    if (l->max_children > l->server_limit)
        l->max_children = l->server_limit;
    if (l->max_children == 0)
        l->max_children = 1;
    if (l->start_children > l->max_children)
        l->start_children = l->max_children;
}

const mpm__strategy_t *mpm__strategy_find(const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(strategies) / sizeof(strategies[0]); i++) {
        if (name[0] == '\0' && strategies[i].impl)
            return strategies[i].impl;
        if (strcasecmp(name, strategies[i].name) != 0)
            continue;
        if (!strategies[i].impl)
            snprintf(err, errlen, "MPM %s: not available yet in this build", strategies[i].name);
        return strategies[i].impl;
    }
    snprintf(err, errlen, "MPM %s: unknown strategy (prefork, worker, event)", name);
    return NULL;
}
