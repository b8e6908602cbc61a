/*
 * `hvmm lab ...`: hands over to lab/lab.py, which runs guests under this very
 * binary and reports what they measured. The labs orchestrate several runs,
 * parse JSON and draw tables and pictures: work for a script, not for the
 * VMM, which stays small. The script is found beside the binary as the build
 * lays it out (BUILD/hvmm → BUILD/../lab/lab.py), or at $HVMM_LAB_SCRIPT.
 */
#include "labcmd.h"

#include <errno.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

int labcmd_main(int argc, char **argv)
{
	char exe[PATH_MAX], dir[PATH_MAX], script[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		fprintf(stderr, "hvmm lab: /proc/self/exe: %s\n", strerror(errno));
		return HVMM_EXIT_HOST;
	}
	exe[n] = '\0';
	const char *env = getenv("HVMM_LAB_SCRIPT");
	if (env && *env) {
		snprintf(script, sizeof(script), "%s", env);
	} else {
		snprintf(dir, sizeof(dir), "%s", exe);
		snprintf(script, sizeof(script), "%s/../lab/lab.py", dirname(dir));
	}
	if (access(script, R_OK) != 0) {
		fprintf(stderr, "hvmm lab: %s: %s (set HVMM_LAB_SCRIPT to lab/lab.py of hvmm's source)\n",
			script, strerror(errno));
		return HVMM_EXIT_HOST;
	}
	/* python3 lab.py --hvmm EXE ARGS... (argv[0] is "lab") */
	char **args = calloc((size_t)argc + 4, sizeof(*args));
	if (!args) {
		fprintf(stderr, "hvmm lab: out of memory\n");
		return HVMM_EXIT_HOST;
	}
	args[0] = "python3";
	args[1] = script;
	args[2] = "--hvmm";
	args[3] = exe;
	for (int i = 1; i < argc; i++)
		args[i + 3] = argv[i];
	execvp("python3", args);
	fprintf(stderr, "hvmm lab: python3: %s (the labs need Python 3)\n", strerror(errno));
	free(args);
	return HVMM_EXIT_HOST;
}
