/*
 * ctl: `hvmm ctl SOCKET COMMAND`, a small client of the control API for
 * people (scripts may use curl --unix-socket just as well).
 */
#ifndef HVMM_CTL_H
#define HVMM_CTL_H

/* argv[0] is "ctl". Exit status: 0 the request succeeded (its answer on
 * stdout); 1 the API refused it (its fault_message on stderr); 2 usage;
 * 6 no API at SOCKET (connect or read failed). */
int ctl_main(int argc, char **argv);

#endif
