// What a fuzz target does when a property it checks does not hold: print the failed
// condition and abort, which libFuzzer reports as a crash and saves the input for.
#ifndef SLUICE_TESTS_FUZZ_FUZZ_CHECK_H_
#define SLUICE_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define SLUICE_FUZZ_CHECK(condition)                                             \
  do {                                                                           \
    if (!(condition)) {                                                          \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, \
                   #condition);                                                  \
      std::abort();                                                              \
    }                                                                            \
  } while (false)

#endif  // SLUICE_TESTS_FUZZ_FUZZ_CHECK_H_
