/* Callbacks added to the configuration after 0.1, kept apart from the
 * directive table. */
#include "internal.h"

int mpm_config_set_error_cb(mpm_config_t *cfg, mpm_error_cb cb, void *data)
{
    if (!cfg)
        return MPM_EINVAL;
    cfg->error_cb = cb;
    cfg->error_data = data;
    return 0;
}
