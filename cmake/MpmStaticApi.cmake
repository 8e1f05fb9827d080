# mpm_add_public_static(NAME OBJLIB EXTRA_OBJECTS EXTRA_TARGETS)
#
# A static library that exposes only default-visibility symbols (the public
# mpm_* API). Every object of OBJLIB, plus EXTRA_OBJECTS (a generator
# expression list such as llhttp's objects), is linked with `ld -r` into one
# relocatable object; `objcopy --localize-hidden` then turns every hidden
# symbol into a local one, so the archive's symbol table holds the API alone.
# Internal calls were resolved by the partial link, so nothing is lost.
find_program(MPM_OBJCOPY NAMES ${CMAKE_OBJCOPY} objcopy)
if(NOT MPM_OBJCOPY)
  message(FATAL_ERROR "objcopy not found: apt-get install binutils")
endif()

# EXTRA_TARGETS names the targets that build EXTRA_OBJECTS: an object file
# of another target is no build-order dependency by itself, and a fresh
# parallel build would otherwise link before it exists.
function(mpm_add_public_static name objlib extra_objects extra_targets)
  set(_obj ${CMAKE_CURRENT_BINARY_DIR}/${name}_api.o)
  add_custom_command(OUTPUT ${_obj}
    COMMAND ${CMAKE_LINKER} -r -o ${_obj} $<TARGET_OBJECTS:${objlib}> ${extra_objects}
    COMMAND ${MPM_OBJCOPY} --localize-hidden ${_obj}
    DEPENDS ${objlib} $<TARGET_OBJECTS:${objlib}> ${extra_objects}
    COMMAND_EXPAND_LISTS
    COMMENT "Linking ${name}'s objects into one, internal symbols made local"
    VERBATIM)
  add_library(${name} STATIC ${_obj})
  set_target_properties(${name} PROPERTIES LINKER_LANGUAGE C)
  add_dependencies(${name} ${objlib} ${extra_targets})
endfunction()
