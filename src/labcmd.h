/* labcmd: `hvmm lab`, the lecture's mechanisms measured (lab/lab.py). */
#ifndef HVMM_LABCMD_H
#define HVMM_LABCMD_H

/* argv[0] is "lab". Execs python3 with lab/lab.py; returns only on failure,
 * with an exit status (the error printed). */
int labcmd_main(int argc, char **argv);

#endif
