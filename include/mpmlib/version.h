/* mpmlib version. CMake reads the three numbers below; keep them the only
 * place the version is written. Same major version = same ABI. */
#ifndef MPMLIB_VERSION_H
#define MPMLIB_VERSION_H

#define MPM_VERSION_MAJOR 0
#define MPM_VERSION_MINOR 1
#define MPM_VERSION_PATCH 0

/* 0xMMmmpp: compare with >= in #if. */
#define MPM_VERSION_HEX                                                        \
    ((MPM_VERSION_MAJOR << 16) | (MPM_VERSION_MINOR << 8) | MPM_VERSION_PATCH)

#endif
