/* tests: the test=NAME suites, TAP on the serial console. */
#ifndef GUEST_TESTS_H
#define GUEST_TESTS_H

__attribute__((noreturn)) void tests_main(void);

#endif
