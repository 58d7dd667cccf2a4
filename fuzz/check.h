#pragma once
// FUZZ_CHECK(cond): a property every input must keep; a violation prints it and aborts, which
// libFuzzer reports as a crash and saves the input (docs/development.md: "A crash becomes a
// unit test").
#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: property violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (false)
