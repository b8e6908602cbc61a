/* tests: the test=NAME suites, TAP on the serial console. */
#ifndef GUEST_TESTS_H
#define GUEST_TESTS_H

#include <stdbool.h>

__attribute__((noreturn)) void tests_main(void);
/* SYS_TAP: a check line from a ring-3 test, numbered with the kernel's own. */
void tests_user_tap(bool ok, const char *msg, unsigned len);

#endif
