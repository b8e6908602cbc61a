/*
 * virtio: the virtio 1.2 modern PCI transport and the interface its device
 * models (rng, console, blk, net) implement.
 *
 * Transport (virtio_pci.c): one PCI function per device, vendor 0x1af4,
 * device 0x1040 + type, with the four virtio capabilities in memory BAR 0
 * (common config, notify, ISR, device config) and MSI-X (table + PBA) in
 * memory BAR 2. Each queue's notify address is its own 4-byte slot of the
 * notify region (notify_off_multiplier 4) and gets an MMIO ioeventfd, so a
 * guest "kick" is absorbed by KVM; the event-loop thread sees the eventfd and
 * calls the model's queue_notify. With --no-ioeventfd the kick exits to hvmm,
 * whose vCPU thread writes that same eventfd, so the model still runs only on
 * the event loop.
 *
 * Device status, feature negotiation (VERSION_1, EVENT_IDX, INDIRECT_DESC plus
 * the model's own; with --device intel-iommu also ACCESS_PLATFORM, which the
 * driver must then accept: every queue address becomes an IOVA translated
 * with the function's requester id), queue set-up, reset (status 0 → every queue stopped,
 * model's reset called, MSI-X vectors unassigned), config generation and
 * config-change interrupts are handled here; models only see queues.
 *
 * Threads: every queue callback of a model (queue_notify, driver_ok, reset
 * after a guest reset) runs on the event-loop thread, as should the model's
 * own back-end callbacks (evloop_add). A guest's status-0 write has the
 * loop run the model's reset between two callbacks (the vCPU waits for it,
 * bounded; device_status reads non-zero until the reset is done, as
 * §4.1.4.3.2 allows). So a model needs no lock for its queues. config_read/config_write run on
 * vCPU threads under the PCI function's lock.
 *
 * Creation: a model and its function are made from a struct dev_env's
 * handles only (device.h: guest memory, the event loop, KVM's VM fd, the PCI
 * host, the IOMMU, the stop handle, the registry), by the registry types at
 * the end of this header, which also destroy them (virtio_dev_destroy) and
 * reset them from the host (virtio_dev_reset).
 */
#ifndef HVMM_VIRTIO_H
#define HVMM_VIRTIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virtqueue.h"

struct virtio_dev;
struct snap_buf;
struct snap_cur;

#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33 /* offered (and required) with --device intel-iommu */

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_NO_VECTOR 0xffff

/* device_status bits (§2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED 0x80

struct virtio_dev_ops {
	const char *name;        /* "virtio-blk" */
	uint16_t device_type;    /* VIRTIO_ID_* */
	uint64_t features;       /* device-specific feature bits offered */
	unsigned nr_queues;
	uint16_t queue_max;      /* power of two <= VQ_MAX_SIZE */
	size_t config_size;      /* device-specific configuration bytes */
	/* Device config space (guest reads/writes at offset < config_size). The
	 * transport holds the device lock; read fills, write may be NULL (read-only). */
	void (*config_read)(struct virtio_dev *d, unsigned off, void *buf, unsigned len);
	void (*config_write)(struct virtio_dev *d, unsigned off, const void *buf, unsigned len);
	/* Event-loop thread: queue q was kicked (or has work after DRIVER_OK). */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/* Status became DRIVER_OK: start back ends. Event-loop thread (the
	 * transport then calls queue_notify once for every live queue). */
	void (*driver_ok)(struct virtio_dev *d);
	/* Device reset by the guest (status 0; event-loop thread, so never
	 * during another of the model's loop callbacks) or at tear-down (main
	 * thread, loop stopped): drop in-flight work; after return no buffer of
	 * the old queues may be touched. No transport lock is held. */
	void (*reset)(struct virtio_dev *d);
	/* Tear-down (after reset): free the model. The transport does not touch
	 * the ops table afterwards, so it may live in the model's state. */
	void (*destroy)(struct virtio_dev *d);

	/*
	 * Snapshots (src/snapshot.h; virtio_snap.c saves the transport and its
	 * queues, then calls these for the model's own state). A model with
	 * neither snap_save nor snap_stateless makes the VM refuse snapshots.
	 *  - quiesce: before anything is saved, with the VM paused and the
	 *    loop parked (API thread, no lock held): finish every request in
	 *    flight in a back end and publish it to the used ring, so that the
	 *    queue state saved next has none in flight. May be NULL.
	 *  - snap_save: append the model's guest-visible state (deterministic:
	 *    the same state saves the same bytes). 0 or -1 with err.
	 *  - snap_load: after the transport's state is loaded (queues restored,
	 *    not yet processed) and before driver_ok is called for a device
	 *    that was DRIVER_OK: read exactly what snap_save wrote, check it as
	 *    guest input, apply it. 0 or -1 with "<model>: <field>..." in err.
	 */
	void (*quiesce)(struct virtio_dev *d);
	int (*snap_save)(struct virtio_dev *d, struct snap_buf *b, char *err, size_t n);
	int (*snap_load)(struct virtio_dev *d, struct snap_cur *c, char *err, size_t n);
	bool snap_stateless; /* nothing of its own beyond the transport and queues */
};

/* Create the PCI function, its BARs, capabilities and MSI-X, and register
 * it on bus 0. `opaque` is the model's state. NULL with errno on failure. */
struct dev_env;
struct virtio_dev *virtio_pci_create(const struct dev_env *env, const struct virtio_dev_ops *ops, void *opaque);
/* The model's reset (the loop is stopped), its destroy, and the function's
 * eventfds and state: the registry types' destroy. The PCI function stays on
 * bus 0 with dead BARs until the host is freed (pci.c has no unplug). */
void virtio_dev_destroy(struct virtio_dev *d);
/* A reset by the host (the registry's reset; vCPUs and loop parked): what
 * the driver's write of 0 to device_status does (the model's reset, the
 * transport's registers: features, queues, vectors, status 0), and the PCI
 * function's configuration space back to what it was when created (BARs,
 * command, MSI-X off). It then saves as a fresh device does. */
void virtio_dev_reset(struct virtio_dev *d);
void *virtio_dev_opaque(struct virtio_dev *d);
/* Features the driver accepted (valid after FEATURES_OK). */
uint64_t virtio_dev_features(struct virtio_dev *d);
/* The queue, or NULL unless it is enabled and the device live (DRIVER_OK
 * seen by the loop, no DEVICE_NEEDS_RESET, no reset since). */
struct virtqueue *virtio_queue(struct virtio_dev *d, unsigned q);

/* vq_pop() on queue q, and on a malformed chain virtio_dev_needs_reset()
 * with the reason: 1 popped, 0 empty (or queue not live), < 0 VQ_ERR_*. */
int virtio_queue_pop(struct virtio_dev *d, unsigned q, struct vq_elem *e);
/* After vq_push()es on q: interrupt the driver if the queue asks for it. */
void virtio_queue_interrupt(struct virtio_dev *d, unsigned q);
/* Device config changed: bump config_generation, raise the config vector. */
void virtio_config_changed(struct virtio_dev *d);
/* A driver bug (malformed ring, notify before DRIVER_OK on a strict path...):
 * set DEVICE_NEEDS_RESET, raise the config interrupt, count it, and stop
 * processing the device's queues until reset. `why` goes to the log once. */
void virtio_dev_needs_reset(struct virtio_dev *d, const char *why);
/* Counters for statistics / tests. */
struct virtio_dev_stats {
	uint64_t notifies;       /* kicks seen by the event loop */
	uint64_t interrupts;     /* interrupts raised */
	uint64_t suppressed;     /* interrupts not needed (EVENT_IDX) */
	uint64_t bad_chains;     /* vq_pop errors */
	uint64_t needs_reset;    /* times DEVICE_NEEDS_RESET was set */
	uint64_t early_notifies; /* kicks before DRIVER_OK (ignored) */
	uint64_t resets;
	uint64_t refused;        /* set-up writes refused: bad queue size, features */
	uint64_t dma_translations; /* IOVAs translated through the IOMMU */
	uint64_t dma_faults;     /* ... that faulted */
};
void virtio_dev_get_stats(struct virtio_dev *d, struct virtio_dev_stats *out);
const char *virtio_dev_name(struct virtio_dev *d);
unsigned virtio_dev_devfn(struct virtio_dev *d);
uint8_t virtio_dev_status(struct virtio_dev *d);
/* The virtio devices of a registry, in creation order, for statistics and
 * tests: returns count (<= max). */
struct dev_registry;
unsigned virtio_devices(const struct dev_registry *r, struct virtio_dev **out, unsigned max);

/*
 * The device models (virtio_rng.c, virtio_console.c, virtio_blk.c,
 * virtio_net.c), created from the handles in env only. Each returns 0 or
 * -errno, after printing nothing: the registry type words the error. The
 * new function goes to *out (the registry's create records it), or with out
 * NULL is recorded in env->reg as its type's next instance (a test or a
 * fuzzer that makes one with arguments of its own).
 */
int virtio_rng_create(const struct dev_env *env, struct virtio_dev **out);
int virtio_console_create(const struct dev_env *env, struct virtio_dev **out); /* hvc0 on stdin/stdout */
int virtio_blk_create(const struct dev_env *env, const char *path, bool readonly, struct virtio_dev **out);
/* The same with a rate limit (NULL or inactive: none). */
struct ratelimit;
int virtio_blk_create_limited(const struct dev_env *env, const char *path, bool readonly,
			      const struct ratelimit *rl, struct virtio_dev **out);
/*
 * A migration's hand-over of the disk images' locks (image_lock.h): the
 * source, paused and its requests drained, flushes each image and drops its
 * locks (take false); the destination, which opened them without locking,
 * takes them before its guest runs (take true), and a source whose
 * destination refused takes them back. 0 or -1 with err naming the disk.
 */
int virtio_blk_handover(const struct dev_registry *r, bool take, char *err, size_t n);
/* spec: "user[,hostfwd=tcp:[ADDR]:HPORT-[GADDR]:GPORT]..." or "tap:IFNAME"; -EINVAL on a bad spec.
 * index: which --network it is (the n-th gets the n-th MAC). */
int virtio_net_create(const struct dev_env *env, const char *spec, int index, struct virtio_dev **out);

/* The registry's types (virtio_devs.c, device.h). */
struct dev_ops;
extern const struct dev_ops virtio_rng_dev_ops;
extern const struct dev_ops virtio_console_dev_ops;
extern const struct dev_ops virtio_blk_dev_ops;
extern const struct dev_ops virtio_net_dev_ops;
/* ops is one of them. */
bool virtio_is_type(const struct dev_ops *ops);
/* A model's last step (see the models above): d to *out, or recorded in
 * env->reg. 0, or -ENOMEM (d destroyed). */
int virtio_model_done(const struct dev_env *env, struct virtio_dev *d, struct virtio_dev **out);

#endif
