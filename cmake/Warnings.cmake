# One INTERFACE target carries warnings, sanitizer and hardening flags; every target links it.
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

# Hardening (TW_HARDEN, on by default): stack protector, PIE, full RELRO with immediate binding,
# and _FORTIFY_SOURCE=3 where the code is optimized (glibc warns about it at -O0, and it does
# not mix with the sanitizers). Checked on the release binary by the test build.hardening.
if(TW_HARDEN)
  target_compile_options(tw_warnings INTERFACE -fstack-protector-strong)
  if(NOT TW_SANITIZE AND NOT TW_FUZZ)
    target_compile_options(tw_warnings INTERFACE
      $<$<NOT:$<CONFIG:Debug>>:-U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3>)
  endif()
  target_link_options(tw_warnings INTERFACE -Wl,-z,relro,-z,now)
endif()
