/*
 * snapshot's own: the registry, shared by its .c files (not by devices).
 */
#ifndef HVMM_SNAPSHOT_PRIV_H
#define HVMM_SNAPSHOT_PRIV_H

#include <stdint.h>

#include "snapshot.h"

struct snapshot_dev {
	const struct snap_ops *ops;
	void *dev;
	uint32_t instance;
};

struct snapshot_reg {
	struct snapshot_dev *devs;
	int nr, cap;
	const char *unsupported; /* the first device that cannot be saved, or NULL */
};

#endif
