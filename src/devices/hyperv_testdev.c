/*
 * hyperv-testdev: QEMU's Hyper-V test device, which kvm-unit-tests'
 * hyperv_synic and hyperv_connections drive (`-device hyperv-testdev`). One
 * 32-bit write-only register at port 0x3000; a write of
 *
 *     conn_id << 24 | command << 16 | vp_index << 8 | sint
 *
 * carries out one command:
 *
 *   1 SINT_ROUTE_CREATE   a route to SINT `sint` of vCPU `vp_index`
 *   2 SINT_ROUTE_DESTROY  drop the first such route
 *   3 SINT_ROUTE_SET_SINT raise it
 *   4 MSG_CONN_CREATE     message connection `conn_id` to that SINT
 *   5 MSG_CONN_DESTROY    drop message connection `conn_id`
 *   6 EVT_CONN_CREATE     event connection `conn_id` to that SINT (flag
 *                         number conn_id)
 *   7 EVT_CONN_DESTROY    drop event connection `conn_id`
 *
 * The SynIC work (routes, connections, the hypercalls, the guest pages) is
 * hyperv.c's; this file decodes. A command that cannot be carried out (no
 * such vCPU, SINT or route, a connection id in use, every slot taken) is
 * dropped: QEMU's device would assert there, stopping the whole VM. Other
 * sizes and offsets are ignored; reads give 0.
 */
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../hyperv.h"
#include "devices_priv.h"

/* The SINT routes made by commands 1-3 (connections own theirs). */
struct hyperv_testdev_route {
	bool used;
	uint8_t vp, sint;
	int handle; /* hyperv.c's */
};

struct hyperv_testdev {
	struct hyperv *hv; /* the SynIC whose routes and connections it makes */
	struct bus *pio;
	pthread_mutex_t lock;
	struct hyperv_testdev_route routes[HYPERV_MAX_ROUTES];
	/* The connections its commands made (conn_id is 8 bits), which a
	 * reset takes down again: a bit per id. */
	uint8_t msg_conns[256 / 8], evt_conns[256 / 8];
	uint64_t refused; /* commands dropped */
};

static void hyperv_testdev_conn_mark(uint8_t *set, uint32_t id, bool on)
{
	if (on)
		set[id / 8] |= (uint8_t)(1u << (id % 8));
	else
		set[id / 8] &= (uint8_t)~(1u << (id % 8));
}

struct hyperv_testdev_cmd hyperv_testdev_decode(uint32_t value)
{
	return (struct hyperv_testdev_cmd){
		.sint = value & 0xff,
		.vp = (value >> 8) & 0xff,
		.command = (value >> 16) & 0xff,
		.conn_id = value >> 24,
	};
}

static int hyperv_testdev_route_find(struct hyperv_testdev *t, unsigned vp, unsigned sint)
{
	for (int i = 0; i < HYPERV_MAX_ROUTES; i++)
		if (t->routes[i].used && t->routes[i].vp == vp && t->routes[i].sint == sint)
			return i;
	return -1;
}

/* Commands 4-7, remembered for the reset. Called with t->lock held. */
static int hyperv_testdev_conn(struct hyperv_testdev *t, struct hyperv_testdev_cmd c)
{
	bool msg = c.command == HYPERV_TESTDEV_MSG_CONN_CREATE || c.command == HYPERV_TESTDEV_MSG_CONN_DESTROY;
	bool create = c.command == HYPERV_TESTDEV_MSG_CONN_CREATE || c.command == HYPERV_TESTDEV_EVT_CONN_CREATE;
	int r;
	if (msg)
		r = create ? hyperv_msg_conn_create(t->hv, c.conn_id, c.vp, c.sint) : hyperv_msg_conn_destroy(t->hv, c.conn_id);
	else
		r = create ? hyperv_evt_conn_create(t->hv, c.conn_id, c.vp, c.sint) : hyperv_evt_conn_destroy(t->hv, c.conn_id);
	if (r == 0)
		hyperv_testdev_conn_mark(msg ? t->msg_conns : t->evt_conns, c.conn_id, create);
	return r;
}

/* Called with t->lock held. */
static int hyperv_testdev_run(struct hyperv_testdev *t, struct hyperv_testdev_cmd c)
{
	struct hyperv *hv = t->hv;
	int i;
	switch (c.command) {
	case HYPERV_TESTDEV_SINT_ROUTE_CREATE: {
		for (i = 0; i < HYPERV_MAX_ROUTES && t->routes[i].used; i++)
			;
		if (i == HYPERV_MAX_ROUTES)
			return -ENOSPC;
		int h = hyperv_route_create(hv, c.vp, c.sint);
		if (h < 0)
			return h;
		t->routes[i] = (struct hyperv_testdev_route){ true, c.vp, c.sint, h };
		return 0;
	}
	case HYPERV_TESTDEV_SINT_ROUTE_DESTROY:
		if ((i = hyperv_testdev_route_find(t, c.vp, c.sint)) < 0)
			return -ENOENT;
		hyperv_route_destroy(hv, t->routes[i].handle);
		t->routes[i].used = false;
		return 0;
	case HYPERV_TESTDEV_SINT_ROUTE_SET_SINT:
		if ((i = hyperv_testdev_route_find(t, c.vp, c.sint)) < 0)
			return -ENOENT;
		return hyperv_route_raise(hv, t->routes[i].handle);
	case HYPERV_TESTDEV_MSG_CONN_CREATE:
	case HYPERV_TESTDEV_MSG_CONN_DESTROY:
	case HYPERV_TESTDEV_EVT_CONN_CREATE:
	case HYPERV_TESTDEV_EVT_CONN_DESTROY:
		return hyperv_testdev_conn(t, c);
	default:
		return -EINVAL;
	}
}

int hyperv_testdev_write(struct hyperv_testdev *t, uint32_t value)
{
	if (!t)
		return -ENODEV;
	pthread_mutex_lock(&t->lock);
	int r = hyperv_testdev_run(t, hyperv_testdev_decode(value));
	if (r < 0)
		t->refused++;
	pthread_mutex_unlock(&t->lock);
	return r;
}

uint64_t hyperv_testdev_refused(struct hyperv_testdev *t)
{
	if (!t)
		return 0;
	pthread_mutex_lock(&t->lock);
	uint64_t n = t->refused;
	pthread_mutex_unlock(&t->lock);
	return n;
}

int hyperv_testdev_route(struct hyperv_testdev *t, unsigned vp, unsigned sint)
{
	if (!t)
		return -1;
	pthread_mutex_lock(&t->lock);
	int i = hyperv_testdev_route_find(t, vp, sint);
	int h = i < 0 ? -1 : t->routes[i].handle;
	pthread_mutex_unlock(&t->lock);
	return h;
}

static uint64_t hyperv_testdev_pio_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	return 0;
}

static void hyperv_testdev_pio_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct hyperv_testdev *t = opaque;
	if (offset != 0 || size != 4) /* QEMU's register takes 4-byte accesses only */
		return;
	hyperv_testdev_write(t, (uint32_t)value);
}

static const struct bus_ops hyperv_testdev_ops = {
	.read = hyperv_testdev_pio_read,
	.write = hyperv_testdev_pio_write,
};

static void hyperv_testdev_destroy(void *dev)
{
	struct hyperv_testdev *t = dev;
	devices_bus_forget(t->pio, t);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static int hyperv_testdev_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	if (!env->hyperv)
		return -ENODEV; /* main.c asks for --hyperv first */
	struct hyperv_testdev *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->hv = env->hyperv;
	t->pio = env->pio;
	pthread_mutex_init(&t->lock, NULL);
	int r = bus_register(env->pio, HYPERV_TESTDEV_PORT, 4, &hyperv_testdev_ops, t, "hyperv-testdev");
	if (r < 0) {
		hyperv_testdev_destroy(t);
		return r;
	}
	/* Its state is handles into hyperv.c's SINT routes and SynIC message and
	 * event connections (KVM GSIs, eventfds, KVM_HYPERV_EVENTFD): host
	 * objects that hyperv.c would have to rebuild first, and it has no
	 * snapshot of its own. So a VM with the test device is not saveable. */
	dev_registry_unsupported(env->reg, "--device hyperv-testdev");
	*dev = t;
	return 0;
}

static int hyperv_testdev_count(const struct vm_config *cfg)
{
	return cfg->hyperv_testdev;
}

static void hyperv_testdev_stats(void *dev, struct json_object *obj)
{
	json_object_object_add(obj, "refused", json_object_new_uint64(hyperv_testdev_refused(dev)));
}

/* As created: every SINT route and connection its commands made taken
 * down in the SynIC (the "refused" counter is statistics, kept). */
static void hyperv_testdev_reset(void *dev)
{
	struct hyperv_testdev *t = dev;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < HYPERV_MAX_ROUTES; i++)
		if (t->routes[i].used) {
			hyperv_route_destroy(t->hv, t->routes[i].handle);
			t->routes[i].used = false;
		}
	for (uint32_t id = 0; id < 256; id++) {
		if (t->msg_conns[id / 8] & (1u << (id % 8)))
			hyperv_msg_conn_destroy(t->hv, id);
		if (t->evt_conns[id / 8] & (1u << (id % 8)))
			hyperv_evt_conn_destroy(t->hv, id);
	}
	memset(t->msg_conns, 0, sizeof(t->msg_conns));
	memset(t->evt_conns, 0, sizeof(t->evt_conns));
	pthread_mutex_unlock(&t->lock);
}

/* No snapshot: see create. */
const struct dev_ops hyperv_testdev_dev_ops = {
	.name = "hyperv-testdev",
	.desc = "hyperv-testdev",
	.count = hyperv_testdev_count,
	.create = hyperv_testdev_create,
	.reset = hyperv_testdev_reset,
	.stats = hyperv_testdev_stats,
	.destroy = hyperv_testdev_destroy,
};
