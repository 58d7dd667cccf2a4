# One INTERFACE target carries warnings and sanitizer flags; every target links it.
add_library(tw_warnings INTERFACE)
target_compile_options(tw_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
if(TW_WERROR)
  target_compile_options(tw_warnings INTERFACE -Werror)
endif()
if(TW_SANITIZE)
  target_compile_options(tw_warnings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                         -fno-sanitize-recover=undefined)
  target_link_options(tw_warnings INTERFACE -fsanitize=address,undefined)
endif()
if(TW_FUZZ)
  # Coverage instrumentation for libFuzzer plus ASan and UBSan on every library; only the fuzz
  # targets link the fuzzer runtime (fuzz/CMakeLists.txt: -fsanitize=fuzzer).
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TW_FUZZ needs clang (libFuzzer): use the `fuzz` preset")
  endif()
  # -fno-sanitize=function: clang 14 cannot assemble its prologue data in C++20 coroutines
  # ("Cannot represent a difference across sections", http_client.cpp, http_endpoint.cpp).
  target_compile_options(tw_warnings INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                         -fno-sanitize=function -fno-omit-frame-pointer
                         -fno-sanitize-recover=undefined)
  target_link_options(tw_warnings INTERFACE -fsanitize=address,undefined)
endif()

# tw_add_library(<name> SOURCES ... DEPS ...): a static library tw_<name> with alias tw::<name>.
function(tw_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(tw_${name} STATIC ${ARG_SOURCES})
  add_library(tw::${name} ALIAS tw_${name})
  target_include_directories(tw_${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
  target_link_libraries(tw_${name} PUBLIC ${ARG_DEPS} PRIVATE tw_warnings ${ARG_PRIVATE_DEPS})
endfunction()
