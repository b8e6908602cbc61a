/*
 * vfio: the host side of passthrough (vfio.h) — container, group, device,
 * DMA mappings, region and interrupt information. The order is VFIO's
 * (Documentation/driver-api/vfio.rst): the group must be viable before it
 * joins a container, the container needs a group before it accepts an
 * IOMMU type, and the device fd comes from the group once both are set.
 */
#include "vfio.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "memory.h"
#include "util.h"

static int vfio_msg(char *err, size_t errlen, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int vfio_msg(char *err, size_t errlen, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return status;
}

/* ---- the command line ---- */

static bool vfio_hex(const char *s, size_t n, unsigned max, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return false;
		v = v * 16 + (unsigned)(isdigit((unsigned char)s[i]) ? s[i] - '0' : (tolower(s[i]) - 'a' + 10));
	}
	*out = v;
	return v <= max;
}

int vfio_parse(const char *props, char bdf[VFIO_BDF_LEN], char *err, size_t errlen)
{
	if (strncmp(props, "host=", 5) != 0)
		return vfio_msg(err, errlen, -EINVAL, "needs host=DDDD:BB:DD.F (the host PCI function)");
	const char *a = props + 5;
	size_t n = strlen(a);
	unsigned dom = 0, bus, dev, fn;
	const char *p = a;
	/* DDDD:BB:DD.F or BB:DD.F, nothing after it */
	if (n == 12) {
		if (!vfio_hex(p, 4, 0xffff, &dom) || p[4] != ':')
			goto bad;
		p += 5;
	} else if (n != 7) {
		goto bad;
	}
	if (!vfio_hex(p, 2, 0xff, &bus) || p[2] != ':' || !vfio_hex(p + 3, 2, 0x1f, &dev) || p[5] != '.' ||
	    !vfio_hex(p + 6, 1, 7, &fn))
		goto bad;
	snprintf(bdf, VFIO_BDF_LEN, "%04x:%02x:%02x.%x", dom, bus, dev, fn);
	return 0;
bad:
	return vfio_msg(err, errlen, -EINVAL, "'%s' is not a PCI address DDDD:BB:DD.F (e.g. 0000:00:05.0)",
			a);
}

/* ---- set-up ---- */

void vfio_close(struct vfio_dev *v)
{
	if (v->fd >= 0)
		close(v->fd);
	if (v->group >= 0)
		close(v->group); /* the last group leaves the container: its mappings go */
	if (v->container >= 0)
		close(v->container);
	v->fd = v->group = v->container = -1;
}

/* Walk a region's capability chain (offsets from the start of the info). */
static void vfio_region_caps(struct vfio_region *r, const struct vfio_region_info *info)
{
	uint32_t off = info->cap_offset;
	unsigned hops = 0;
	while (off && off + sizeof(struct vfio_info_cap_header) <= info->argsz && hops++ < 16) {
		const struct vfio_info_cap_header *h = (const void *)((const char *)info + off);
		if (h->id == VFIO_REGION_INFO_CAP_MSIX_MAPPABLE) {
			r->msix_mappable = true;
		} else if (h->id == VFIO_REGION_INFO_CAP_SPARSE_MMAP &&
			   off + sizeof(struct vfio_region_info_cap_sparse_mmap) <= info->argsz) {
			const struct vfio_region_info_cap_sparse_mmap *s = (const void *)h;
			r->sparse = true;
			for (uint32_t i = 0; i < s->nr_areas && r->nr_areas < VFIO_MAX_AREAS; i++) {
				if (off + sizeof(*s) + (i + 1) * sizeof(s->areas[0]) > info->argsz)
					break;
				r->areas[r->nr_areas].offset = s->areas[i].offset;
				r->areas[r->nr_areas].size = s->areas[i].size;
				r->nr_areas++;
			}
		}
		if (h->next <= off)
			break; /* the chain only goes forward */
		off = h->next;
	}
}

static int vfio_region_info(struct vfio_dev *v, unsigned index)
{
	struct vfio_region_info probe = { .argsz = sizeof(probe), .index = index };
	if (ioctl(v->fd, VFIO_DEVICE_GET_REGION_INFO, &probe) < 0)
		return -errno;
	struct vfio_region *r = &v->region[index];
	r->offset = probe.offset;
	r->size = probe.size;
	r->flags = probe.flags;
	if (!(probe.flags & VFIO_REGION_INFO_FLAG_CAPS) || probe.argsz <= sizeof(probe) || probe.argsz > 65536)
		return 0;
	/* Again with room for the capability chain. */
	struct vfio_region_info *full = calloc(1, probe.argsz);
	if (!full)
		return -ENOMEM;
	full->argsz = probe.argsz;
	full->index = index;
	if (ioctl(v->fd, VFIO_DEVICE_GET_REGION_INFO, full) == 0 && full->argsz <= probe.argsz)
		vfio_region_caps(r, full);
	free(full);
	return 0;
}

static int vfio_map_ram(struct vfio_dev *v, const struct guest_mem *mem)
{
	for (int i = 0; i < mem->nr_regions; i++) {
		const struct mem_region *m = &mem->regions[i];
		struct vfio_iommu_type1_dma_map map = {
			.argsz = sizeof(map),
			.flags = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
			.vaddr = (uint64_t)(uintptr_t)m->hva,
			.iova = m->gpa,
			.size = m->size,
		};
		if (ioctl(v->container, VFIO_IOMMU_MAP_DMA, &map) < 0)
			return -errno;
	}
	return 0;
}

/* The group number from sysfs' iommu_group link; -1 with err set. */
static int vfio_group_number(const char *bdf, char *err, size_t errlen)
{
	char path[128], link[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s", bdf);
	if (access(path, F_OK) < 0) {
		vfio_msg(err, errlen, 0, "%s: no such PCI function on this host", path);
		return -1;
	}
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		vfio_msg(err, errlen, 0, "%s: %s (no IOMMU group: is the IOMMU on, e.g. intel_iommu=on?)", path,
			 strerror(errno));
		return -1;
	}
	link[n] = 0;
	const char *base = strrchr(link, '/');
	base = base ? base + 1 : link;
	char *end;
	long g = strtol(base, &end, 10);
	if (*end || g < 0 || g > INT_MAX) {
		vfio_msg(err, errlen, 0, "%s: unexpected link %s", path, link);
		return -1;
	}
	return (int)g;
}

/* The driver the function is bound to, for the not-bound message. */
static void vfio_driver(const char *bdf, char *out, size_t len)
{
	char path[128], link[PATH_MAX];
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver", bdf);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		snprintf(out, len, "no driver");
		return;
	}
	link[n] = 0;
	const char *base = strrchr(link, '/');
	base = base ? base + 1 : link;
	snprintf(out, len, "driver %.48s", base);
}

int vfio_open(struct vfio_dev *v, const char *bdf, const struct guest_mem *mem, char *err, size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->fd = v->group = v->container = -1;
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
	int g = vfio_group_number(bdf, err, errlen);
	if (g < 0)
		return HVMM_EXIT_USAGE;
	char gpath[64];
	snprintf(gpath, sizeof(gpath), "/dev/vfio/%d", g);
	int status = HVMM_EXIT_HOST;
	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0) {
		status = vfio_msg(err, errlen, errno == ENOENT ? HVMM_EXIT_USAGE : HVMM_EXIT_HOST,
				  "/dev/vfio/vfio: %s (is the vfio module loaded?)", strerror(errno));
		goto fail;
	}
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION) {
		vfio_msg(err, errlen, 0, "/dev/vfio/vfio: unknown VFIO API version");
		goto fail;
	}
	v->group = open(gpath, O_RDWR | O_CLOEXEC);
	if (v->group < 0) {
		char drv[64];
		vfio_driver(bdf, drv, sizeof(drv));
		int e = errno;
		/* ENOENT: no vfio-pci device in the group yet; EBUSY: another
		 * process has it. Either way the host's set-up, not hvmm. */
		status = vfio_msg(err, errlen, HVMM_EXIT_USAGE, "%s: %s (%s; %s)", gpath, strerror(e), drv,
				  e == EBUSY ? "is another VM using it?" : "bind it to vfio-pci");
		goto fail;
	}
	struct vfio_group_status gs = { .argsz = sizeof(gs) };
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &gs) < 0) {
		vfio_msg(err, errlen, 0, "%s: VFIO_GROUP_GET_STATUS: %s", gpath, strerror(errno));
		goto fail;
	}
	if (!(gs.flags & VFIO_GROUP_FLAGS_VIABLE)) {
		status = vfio_msg(err, errlen, HVMM_EXIT_USAGE,
				  "%s: group not viable (bind every device in the group to vfio-pci)", gpath);
		goto fail;
	}
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container) < 0) {
		vfio_msg(err, errlen, 0, "%s: VFIO_GROUP_SET_CONTAINER: %s", gpath, strerror(errno));
		goto fail;
	}
	/* Type 1 v2 where there is one (its unmap semantics are the sane
	 * ones), else plain type 1. */
	int type = ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) > 0 ? VFIO_TYPE1v2_IOMMU
		 : ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU) > 0  ? VFIO_TYPE1_IOMMU
										    : -1;
	if (type < 0) {
		status = vfio_msg(err, errlen, HVMM_EXIT_HOST,
				  "/dev/vfio/vfio: no type-1 IOMMU (is vfio_iommu_type1 loaded?)");
		goto fail;
	}
	if (ioctl(v->container, VFIO_SET_IOMMU, type) < 0) {
		vfio_msg(err, errlen, 0, "/dev/vfio/vfio: VFIO_SET_IOMMU: %s", strerror(errno));
		goto fail;
	}
	int r = vfio_map_ram(v, mem);
	if (r < 0) {
		vfio_msg(err, errlen, 0, "VFIO_IOMMU_MAP_DMA of guest RAM: %s%s", strerror(-r),
			 r == -ENOMEM ? " (RLIMIT_MEMLOCK too low for guest RAM?)" : "");
		goto fail;
	}
	v->fd = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (v->fd < 0) {
		vfio_msg(err, errlen, 0, "VFIO_GROUP_GET_DEVICE_FD: %s", strerror(errno));
		goto fail;
	}
	struct vfio_device_info di = { .argsz = sizeof(di) };
	if (ioctl(v->fd, VFIO_DEVICE_GET_INFO, &di) < 0) {
		vfio_msg(err, errlen, 0, "VFIO_DEVICE_GET_INFO: %s", strerror(errno));
		goto fail;
	}
	if (!(di.flags & VFIO_DEVICE_FLAGS_PCI) || di.num_regions <= VFIO_PCI_CONFIG_REGION_INDEX) {
		status = vfio_msg(err, errlen, HVMM_EXIT_USAGE, "not a PCI device");
		goto fail;
	}
	v->can_reset = di.flags & VFIO_DEVICE_FLAGS_RESET;
	for (unsigned i = 0; i < VFIO_PCI_NUM_REGIONS && i < di.num_regions; i++) {
		if ((r = vfio_region_info(v, i)) < 0 && i != VFIO_PCI_VGA_REGION_INDEX) {
			vfio_msg(err, errlen, 0, "VFIO_DEVICE_GET_REGION_INFO %u: %s", i, strerror(-r));
			goto fail;
		}
	}
	for (unsigned i = 0; i < VFIO_PCI_NUM_IRQS && i < di.num_irqs; i++) {
		struct vfio_irq_info ii = { .argsz = sizeof(ii), .index = i };
		if (ioctl(v->fd, VFIO_DEVICE_GET_IRQ_INFO, &ii) == 0)
			v->irq_count[i] = ii.count;
	}
	/* A clean device, whatever its last user left (not every device can). */
	if (v->can_reset && (r = vfio_reset(v)) < 0)
		util_err("--device vfio,host=%s: VFIO_DEVICE_RESET: %s (continuing)", bdf, strerror(-r));
	return 0;
fail:
	vfio_close(v);
	return status;
}

int vfio_set_irqs(struct vfio_dev *v, unsigned index, unsigned start, unsigned count, const int *fds)
{
	struct {
		struct vfio_irq_set s;
		int32_t fd[64];
	} req;
	if (count > 64)
		return -EINVAL;
	memset(&req, 0, sizeof(req));
	req.s.argsz = (uint32_t)(sizeof(req.s) + count * sizeof(int32_t));
	req.s.index = index;
	req.s.start = start;
	req.s.count = count;
	req.s.flags = VFIO_IRQ_SET_ACTION_TRIGGER | (count ? VFIO_IRQ_SET_DATA_EVENTFD : VFIO_IRQ_SET_DATA_NONE);
	for (unsigned i = 0; i < count; i++)
		req.fd[i] = fds[i];
	v->last_irqs.index = index;
	v->last_irqs.start = start;
	v->last_irqs.count = count;
	v->last_irqs.fd0 = count ? fds[0] : -1;
	v->last_irqs.calls++;
	if (v->fd < 0 || v->container < 0)
		return 0; /* a test's fake device: nothing to tell */
	return ioctl(v->fd, VFIO_DEVICE_SET_IRQS, &req) < 0 ? -errno : 0;
}

int vfio_reset(struct vfio_dev *v)
{
	if (!v->can_reset)
		return -ENOTSUP;
	v->resets++;
	if (v->fd < 0 || v->container < 0)
		return 0; /* a test's fake device */
	return ioctl(v->fd, VFIO_DEVICE_RESET) < 0 ? -errno : 0;
}

int vfio_set_irq_unmask_fd(struct vfio_dev *v, unsigned index, int fd)
{
	struct {
		struct vfio_irq_set s;
		int32_t fd;
	} req;
	memset(&req, 0, sizeof(req));
	req.s.argsz = sizeof(req);
	req.s.index = index;
	req.s.count = 1;
	req.s.flags = VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_DATA_EVENTFD;
	req.fd = fd;
	if (v->fd < 0 || v->container < 0)
		return 0;
	return ioctl(v->fd, VFIO_DEVICE_SET_IRQS, &req) < 0 ? -errno : 0;
}
