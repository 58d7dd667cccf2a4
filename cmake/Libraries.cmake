# One folder, one static library (STYLE.md), and the include direction enforced by the build.
#
# Headers are included as "<folder>/<file>.h". A library's PUBLIC include directory is not the
# source tree but an include root of its own in the build tree that holds one symbolic link,
# <folder> -> the library's source folder. A target therefore resolves "storage/x.h" only if it
# links tw::storage (directly or through a PUBLIC dependency); including a module it does not
# link is a compile error. Generated headers of a folder go to generated/<folder>/<folder>/.

# tw_include_root(<folder> <out_var>): the include root of <folder> (a top-level source folder:
# a library, tests, bench), created at configure time.
function(tw_include_root folder out_var)
  set(root ${PROJECT_BINARY_DIR}/include_roots/${folder})
  file(MAKE_DIRECTORY ${root})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${folder} ${root}/${folder} SYMBOLIC)
  set(${out_var} ${root} PARENT_SCOPE)
endfunction()

# tw_add_library(<name> SOURCES ... DEPS ... PRIVATE_DEPS ...), called from the folder <name>/:
# a static library tw_<name> with alias tw::<name>, whose users see the include root of <name>/
# (and its generated headers, if any) and those of its DEPS.
function(tw_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  get_filename_component(folder ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  if(NOT folder STREQUAL name)
    message(FATAL_ERROR "tw_add_library(${name}) must be called from the folder ${name}/")
  endif()
  add_library(tw_${name} STATIC ${ARG_SOURCES})
  add_library(tw::${name} ALIAS tw_${name})
  tw_include_root(${name} root)
  target_include_directories(tw_${name} PUBLIC ${root})
  if(EXISTS ${PROJECT_BINARY_DIR}/generated/${name})
    target_include_directories(tw_${name} PUBLIC ${PROJECT_BINARY_DIR}/generated/${name})
  endif()
  target_link_libraries(tw_${name} PUBLIC ${ARG_DEPS} PRIVATE tw_warnings ${ARG_PRIVATE_DEPS})
endfunction()
