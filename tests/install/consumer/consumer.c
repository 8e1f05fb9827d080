/* A program built against an installed mpmlib: links, calls into it, and
 * checks that the header and the library agree on the version. */
#include <mpmlib/mpmlib.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    mpm_config_t *cfg = NULL;
    char buf[32];
    if (mpm_version() != MPM_VERSION_HEX) {
        fprintf(stderr, "header version %#x, library %#x\n", MPM_VERSION_HEX, mpm_version());
        return 1;
    }
    int rc = mpm_config_new(&cfg);
    if (rc != 0) {
        fprintf(stderr, "mpm_config_new: %s\n", mpm_strerror(rc));
        return 1;
    }
    rc = mpm_config_set(cfg, "KeepAliveTimeout", "7");
    if (rc == 0)
        rc = mpm_config_get(cfg, "KeepAliveTimeout", buf, sizeof buf);
    if (rc < 0 || strcmp(buf, "7") != 0) {
        fprintf(stderr, "config round trip failed: %s\n", mpm_config_errmsg(cfg));
        mpm_config_free(cfg);
        return 1;
    }
    mpm_config_free(cfg);
    printf("mpmlib %s: ok\n", mpm_version_string());
    return 0;
}
