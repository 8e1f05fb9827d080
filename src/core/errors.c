/* Error codes and version: descriptions and names, all static text, so every
 * function here is thread-safe (no strerror(), whose buffer is shared). */
#include <mpmlib/mpmlib.h>

#include <string.h>

#define MPM__STR2(x) #x
#define MPM__STR(x) MPM__STR2(x)

/* glibc >= 2.32 has thread-safe static descriptions and names of errno
 * values; elsewhere codes outside MPM_ERRNO_MAP are reported as unknown. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
#define MPM__HAVE_STRERRORDESC_NP 1
#endif

unsigned mpm_version(void)
{
    return MPM_VERSION_HEX;
}

const char *mpm_version_string(void)
{
    return MPM__STR(MPM_VERSION_MAJOR) "." MPM__STR(MPM_VERSION_MINOR) "." MPM__STR(
        MPM_VERSION_PATCH);
}

/* The library's own wording for the codes of the table, NULL for others. */
static const char *mapped_message(int err)
{
    switch (err) {
#define MPM__ERR_MSG(name, value, msg)                                                             \
    case value:                                                                                    \
        return msg;
        MPM_ERRNO_MAP(MPM__ERR_MSG)
#undef MPM__ERR_MSG
    default:
        return NULL;
    }
}

static const char *mapped_name(int err)
{
    switch (err) {
#define MPM__ERR_NAME(name, value, msg)                                                            \
    case value:                                                                                    \
        return #name;
        MPM_ERRNO_MAP(MPM__ERR_NAME)
#undef MPM__ERR_NAME
    default:
        return NULL;
    }
}

const char *mpm_strerror(int err)
{
    const char *msg = mapped_message(err);
    if (msg)
        return msg;
    if (err == 0)
        return "success";
#ifdef MPM__HAVE_STRERRORDESC_NP
    /* -4095..-1 is where -errno values live (as in the kernel and libuv). */
    if (err < 0 && err > -4096) {
        msg = strerrordesc_np(-err);
        if (msg)
            return msg;
    }
#endif
    return "unknown error";
}

const char *mpm_err_name(int err)
{
    const char *name = mapped_name(err);
    if (name)
        return name;
#ifdef MPM__HAVE_STRERRORDESC_NP
    if (err < 0 && err > -4096) {
        name = strerrorname_np(-err);
        if (name)
            return name;
    }
#endif
    return "UNKNOWN";
}
