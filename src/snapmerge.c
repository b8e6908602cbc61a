/*
 * snapmerge: the command around snapshot_merge (snapmerge.h).
 */
#include "snapmerge.h"

#include <stdio.h>
#include <string.h>

#include "snapshot.h"
#include "util.h"

static void snapmerge_usage(FILE *f)
{
	fputs("Usage: hvmm snapshot-merge BASE DIFF [DIFF...]\n"
	      "\n"
	      "Copy the pages of each diff snapshot's memory file (PUT /snapshot/create with\n"
	      "snapshot_type \"Diff\") onto BASE, the full memory file it descends from, in\n"
	      "order and in place. Each DIFF must be a diff of the file before it (BASE, then\n"
	      "the previous DIFF): anything else is refused before BASE changes. BASE then\n"
	      "belongs to the last DIFF's state file: hvmm run --restore STATE,mem=BASE.\n"
	      "\n"
	      "Exit status: 0 merged; 2 usage error; 4 a file is not what it must be.\n",
	      f);
}

int snapmerge_main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		snapmerge_usage(stdout);
		return 0;
	}
	if (argc < 3) {
		util_err("snapshot-merge: give BASE and at least one DIFF (see hvmm snapshot-merge --help)");
		return HVMM_EXIT_USAGE;
	}
	char err[600];
	uint64_t bytes = 0;
	uint64_t t0 = util_now_ns();
	if (snapshot_merge(argv[1], (const char *const *)argv + 2, argc - 2, &bytes, err, sizeof(err)) < 0) {
		util_err("snapshot-merge: %s", err);
		return HVMM_EXIT_IMAGE;
	}
	printf("merged %d diff%s into %s: %llu bytes in %.1f ms\n", argc - 2, argc > 3 ? "s" : "", argv[1],
	       (unsigned long long)bytes, (double)(util_now_ns() - t0) / 1e6);
	return 0;
}
