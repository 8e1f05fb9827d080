# Finds mpmlib's dependencies (DESIGN §5). A missing one stops configure with
# the Debian package to install. Nothing is downloaded.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config")
endif()
find_package(Threads REQUIRED)

pkg_check_modules(LIBUV IMPORTED_TARGET libuv>=1.44)
if(NOT LIBUV_FOUND)
  message(FATAL_ERROR "libuv >= 1.44 not found: apt-get install libuv1-dev")
endif()

find_package(OpenSSL 3.0)
if(NOT OPENSSL_FOUND)
  message(FATAL_ERROR "OpenSSL >= 3.0 not found: apt-get install libssl-dev")
endif()

# llhttp: an installed package first (CMake config or pkg-config), else the C
# sources Debian's node-llhttp ships, compiled into mpmlib itself with hidden
# visibility so they do not leak into our ABI.
set(MPM_LLHTTP_OBJECTS "")
set(MPM_LLHTTP_LINK "")
find_package(llhttp QUIET CONFIG)
if(llhttp_FOUND AND TARGET llhttp::llhttp)
  add_library(mpm::llhttp ALIAS llhttp::llhttp)
  set(MPM_LLHTTP_LINK llhttp::llhttp)
  set(MPM_LLHTTP_REQUIRES "libllhttp")
else()
  pkg_check_modules(LLHTTP QUIET IMPORTED_TARGET libllhttp)
  if(LLHTTP_FOUND)
    add_library(mpm::llhttp ALIAS PkgConfig::LLHTTP)
    set(MPM_LLHTTP_LINK PkgConfig::LLHTTP)
    set(MPM_LLHTTP_REQUIRES "libllhttp")
  else()
    set(MPM_LLHTTP_SRC_DIR "/usr/share/llhttp" CACHE PATH "llhttp C sources")
    set(MPM_LLHTTP_INC_DIR "/usr/share/include/llhttp" CACHE PATH "llhttp header")
    if(NOT EXISTS "${MPM_LLHTTP_SRC_DIR}/llhttp.c" OR NOT EXISTS "${MPM_LLHTTP_INC_DIR}/llhttp.h")
      message(FATAL_ERROR "llhttp not found: apt-get install node-llhttp "
        "(or set MPM_LLHTTP_SRC_DIR / MPM_LLHTTP_INC_DIR)")
    endif()
    add_library(mpm_llhttp OBJECT
      ${MPM_LLHTTP_SRC_DIR}/llhttp.c ${MPM_LLHTTP_SRC_DIR}/api.c ${MPM_LLHTTP_SRC_DIR}/http.c)
    target_include_directories(mpm_llhttp PUBLIC ${MPM_LLHTTP_INC_DIR})
    set_target_properties(mpm_llhttp PROPERTIES C_VISIBILITY_PRESET hidden POSITION_INDEPENDENT_CODE ON)
    # Third-party code: do not let our warning flags fail it.
    target_compile_options(mpm_llhttp PRIVATE -w)
    add_library(mpm_llhttp_iface INTERFACE)
    target_include_directories(mpm_llhttp_iface INTERFACE $<BUILD_INTERFACE:${MPM_LLHTTP_INC_DIR}>)
    add_library(mpm::llhttp ALIAS mpm_llhttp_iface)
    set(MPM_LLHTTP_OBJECTS $<TARGET_OBJECTS:mpm_llhttp>)
    set(MPM_LLHTTP_REQUIRES "")
  endif()
endif()
