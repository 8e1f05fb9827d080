/* The one core file that names every strategy: the table the master and
 * mpm_server_new() choose from. A new strategy is a folder and a line here. */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

extern const mpm__strategy_t mpm__prefork_strategy;
extern const mpm__strategy_t mpm__worker_strategy;
extern const mpm__strategy_t mpm__event_strategy;

/* Best first: "" (the default) picks the first built entry. */
static const struct {
    const char *name;
    const mpm__strategy_t *impl; /* NULL: not built yet */
} strategies[] = {
    {"event", &mpm__event_strategy},
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

#define NSTRATEGIES (sizeof(strategies) / sizeof(strategies[0]))

const char *mpm__strategy_canonical(const char *name)
{
    for (size_t i = 0; i < NSTRATEGIES; i++)
        if (strcasecmp(name, strategies[i].name) == 0)
            return strategies[i].name;
    return NULL;
}

/* Simplest first, as httpd's documentation lists them. */
void mpm__strategy_list(char *buf, size_t len)
{
    size_t used = 0;
    if (len)
        buf[0] = '\0';
    for (size_t i = NSTRATEGIES; i-- > 0 && used < len;) {
        int n = snprintf(buf + used, len - used, "%s%s", used ? "|" : "", strategies[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

const char *mpm__strategy_default_name(void)
{
    for (size_t i = 0; i < NSTRATEGIES; i++)
        if (strategies[i].impl)
            return strategies[i].name;
    return "";
}

const mpm__strategy_t *mpm__strategy_find(const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < NSTRATEGIES; i++) {
        if (name[0] == '\0' && strategies[i].impl)
            return strategies[i].impl;
        if (strcasecmp(name, strategies[i].name) != 0)
            continue;
        if (!strategies[i].impl)
            snprintf(err, errlen, "MPM %s: not available yet in this build", strategies[i].name);
        return strategies[i].impl;
    }
    char list[128];
    mpm__strategy_list(list, sizeof(list));
    snprintf(err, errlen, "MPM %s: unknown strategy (%s)", name, list);
    return NULL;
}
