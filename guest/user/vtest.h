/* vtest: the ring-3 halves of the virtio tests (test=virtio-*). Each takes its
 * mode (VT_POLL, VT_IRQ; the console also VT_BOTH) and prints its own TAP
 * checks through SYS_TAP; it returns 0 when all passed. */
#ifndef GUEST_USER_VTEST_H
#define GUEST_USER_VTEST_H

#include <stdint.h>

enum { VT_POLL = 0, VT_IRQ = 1, VT_BOTH = 2 };
enum { VT_BENCH_NONE = 0, VT_BENCH_SEQ = 1, VT_BENCH_RAND = 2, VT_BENCH_ALL = 3 };

/* Set by the kernel from the command line before the tasks run. */
struct vt_opts {
	unsigned vio_flags; /* VIO_NO_EVENT_IDX | VIO_NO_INDIRECT (vq=...) */
	unsigned bench;     /* blkbench=seq|rand|all */
	unsigned blk_mib;   /* blkmib=N: MiB written and verified per mode (default 8) */
	unsigned bench_ms;  /* benchms=N: time per benchmark (default 2000) */
	unsigned qd;        /* qd=N: requests in flight for the benchmarks (default 16) */
};
extern struct vt_opts vt_opts;
extern unsigned vnet_open_flags;
struct vnet;
struct vdev *vnet_vdev(struct vnet *n); /* the driver's device, for the tests */

struct vdev;
extern const char *const vt_mode_name[3];
/* Shared checks: the device opened (features in the words after the colon),
 * and interrupts: none in polling mode, some in interrupt mode. */
void vt_report_open(struct vdev *d, const char *mode);
void vt_report_irqs(struct vdev *d, const char *mode, uint64_t before);

long u_vrng_test(long mode);
long u_vcons_test(long mode);
long u_vcons_stall_test(long mode);
long u_vblk_test(long mode);
long u_vnet_test(long mode);

#endif
