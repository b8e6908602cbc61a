/*
 * snapmerge: `hvmm snapshot-merge BASE DIFF...` — diff snapshots' memory
 * files copied onto the full memory file they descend from, in place (what
 * Firecracker's rebase-snap does), so that the last diff's state file then
 * restores from BASE (docs/snapshot.md).
 */
#ifndef HVMM_SNAPMERGE_H
#define HVMM_SNAPMERGE_H

/* argv[0] is "snapshot-merge". 0, 2 (usage) or 4 (a file refused). */
int snapmerge_main(int argc, char **argv);

#endif
