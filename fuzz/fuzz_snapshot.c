/*
 * libFuzzer target for the restore path (docs/snapshot.md): a state file is
 * hostile input like a guest's, so both halves of a restore are fed
 * arbitrary bytes.
 *
 *  - The state-file reader (src/snapshot_file.c): the input is written to a
 *    memfd and opened by path, as `--restore STATE` does (the reader itself
 *    is untouched). A file it accepts must have every section inside it;
 *    snap_reader_next then hands out each section in turn (a wrong name is
 *    refused without moving on), snap_reader_done accepts the end, and
 *    every section a device of the fake VM has is loaded into it.
 *
 *  - The device loads (every snap_ops.load registered, src/devices/,
 *    pci_snap.c, virtio_snap.c and the models): a fake VM A with every
 *    legacy, PCI and virtio device the unit tests build (test_snapshot_
 *    legacy.c, test_snapshot_pci.c), in vm_create's order, on guard-paged
 *    RAM; framed payloads are loaded into its devices. A failed load must
 *    leave a one-line reason; after a load that succeeded, snapshot_
 *    roundtrip saves the device, loads that into the same device of a
 *    fresh VM B and saves again: it must load, and save byte for byte the
 *    same; and the first save must be the payload itself (fz_exact).
 *    Then A is driven through its buses (port and MMIO accesses,
 *    configuration space, RAM, virtqueue set-ups and kicks run inline,
 *    interrupt lines, the UART's input, the event loop's callbacks) so that
 *    a loaded-but-inconsistent state a later access trips over is found, and
 *    at the end every device of A must still save.
 *
 * A load failing stops the loads and skips the driving, as a restore stops
 * at its first error (hvmm exits; the devices are only torn down). Each
 * device is loaded at most once per input, into a device just created: the
 * contract of snap_ops.load.
 *
 * Input format (fuzz/README.md):
 *   byte 0, bit 0 clear: device records, then driver operations:
 *     records [dev][version][len: 3 bytes LE][len bytes], dev % number of
 *     registered devices (registry order: fz_names below); dev 0xff ends the
 *     records; the rest is operations (fz_drive).
 *   byte 0, bit 0 set: a state file (the rest of the input); bit 1 set: the
 *     harness first makes the header's body_size and every CRC right (walking
 *     the sections as far as they go), so the fuzzer gets past the checksums.
 *     A file input is not followed by driver operations: the whole input
 *     is the file (the loads it reaches are the records' loads).
 *
 * FUZZ_SNAPSHOT_SEEDS=DIR: write the seed corpus (saves of fresh and driven
 * VMs, framed, plus state files and broken variants) into DIR and exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bus.h"
#include "devices/devices.h"
#include "evloop.h"
#include "irq.h"
#include "options.h"
#include "pci.h"
#include "snapshot.h"
#include "snapshot_priv.h"
#include "virtio/virtio.h"
#include "virtio/virtio_net.h"
#include "vm.h"
#include "fuzz_common.h"
#include "fuzz_env.h"

#define FZ_CHECK(c)                                                                                  \
	do {                                                                                         \
		if (!(c)) {                                                                          \
			fprintf(stderr, "fuzz_snapshot: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                                     \
		}                                                                                    \
	} while (0)
#define FZ_CHECK_MSG(c, ...)                                                                  \
	do {                                                                                  \
		if (!(c)) {                                                                   \
			fprintf(stderr, "fuzz_snapshot: check failed at line %d: %s: ", __LINE__, #c); \
			fprintf(stderr, __VA_ARGS__);                                         \
			fputc('\n', stderr);                                                  \
			abort();                                                              \
		}                                                                             \
	} while (0)

#define FZ_RAM (1024 * 1024ull)
#define FZ_MAX_REG 32
#define FZ_DISK (64 * 1024)

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm, (void)reason, (void)status, (void)fmt;
}

/*
 * Large zeroed allocations from a cache (-Wl,--wrap=calloc,--wrap=free:
 * fuzz.mk's FUZZ_LDFLAGS_snapshot). Every input builds two VMs, and each
 * virtio-blk callocs its 8 MiB request table: through ASan's allocator
 * that was a fresh mapping memset and faulted in twice per input, most of
 * the target's time (and so were the 16-100 KiB of each PCI function, virtio-net
 * and pc-testdev: ASan maps those afresh too). A calloc of 16 KiB or more gets a guard-paged
 * region (fz_guarded_map: an overrun faults at once, as ASan's redzone
 * would report it) kept across inputs and zeroed with memset when it is
 * freed: its pages stay mapped (on this host a page fault costs more than
 * zeroing the page; MADV_DONTNEED made 256 faults per table).
 */
#define FZ_BIG (16u << 10)
#define FZ_BIG_SLOTS 64
struct fz_big {
	uint8_t *p; /* what calloc returned: its end (16-aligned) at the guard page */
	size_t size;
	bool used;
};
static struct fz_big fz_bigs[FZ_BIG_SLOTS];

void *__real_calloc(size_t n, size_t size);
void __real_free(void *p);
void *__wrap_calloc(size_t n, size_t size);
void __wrap_free(void *p);

void *__wrap_calloc(size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	size_t len = n * size;
	if (len < FZ_BIG)
		return __real_calloc(n, size);
	for (unsigned i = 0; i < FZ_BIG_SLOTS; i++)
		if (fz_bigs[i].p && !fz_bigs[i].used && fz_bigs[i].size == len) {
			fz_bigs[i].used = true;
			return fz_bigs[i].p;
		}
	for (unsigned i = 0; i < FZ_BIG_SLOTS; i++)
		if (!fz_bigs[i].p) {
			size_t pages = (len + 4095) & ~(size_t)4095;
			uint8_t *map = fz_guarded_map(pages);
			if (!map)
				return NULL;
			/* the guard page right after the last byte (rounded to 16) */
			uint8_t *p = map + ((pages - len) & ~(size_t)15);
			fz_bigs[i] = (struct fz_big){ p, len, true };
			return p;
		}
	return __real_calloc(n, size);
}

/* Zero only the pages an input reached: a page never touched is not
 * resident (mincore) and still reads as zeros, and most of the 8 MiB request
 * table is never touched (memsetting all of it twice per input was a quarter
 * of the target's time). */
static void fz_big_zero(uint8_t *p, size_t size)
{
	uintptr_t first = (uintptr_t)p & ~(uintptr_t)4095, end = (uintptr_t)p + size;
	size_t pages = (end - first + 4095) / 4096;
	unsigned char vec[4096];
	for (size_t done = 0; done < pages;) {
		size_t n = pages - done < sizeof(vec) ? pages - done : sizeof(vec);
		if (mincore((void *)(first + done * 4096), n * 4096, vec) != 0) {
			memset(p, 0, size); /* cannot tell: zero it all */
			return;
		}
		for (size_t i = 0; i < n; i++) {
			if (!(vec[i] & 1))
				continue;
			uintptr_t a = first + (done + i) * 4096, b = a + 4096;
			if (a < (uintptr_t)p)
				a = (uintptr_t)p;
			if (b > end)
				b = end;
			memset((void *)a, 0, b - a);
		}
		done += n;
	}
}

void __wrap_free(void *p)
{
	for (unsigned i = 0; i < FZ_BIG_SLOTS; i++)
		if (p && fz_bigs[i].p == p) {
			FZ_CHECK(fz_bigs[i].used); /* a double free */
			fz_big_zero(p, fz_bigs[i].size);
			fz_bigs[i].used = false;
			return;
		}
	__real_free(p);
}

/* ---- the event loop: per VM, run by the input (A) or never (B) ----
 * Without vm->evloop the virtio transport acts inline and the PIT has no
 * timer; the back ends (virtio-net's socket, the console's stdin/stdout)
 * still register their fds here, and fz_loop_turn runs what poll(2) says
 * is ready, as src/evloop.c's thread would. Keyed by VM: both consoles
 * watch stdin. */
#define FZ_WATCHES 16
struct fz_watch {
	struct vm *vm;
	int fd;
	uint32_t events;
	evloop_fn fn;
	void *opaque;
};
static struct fz_watch fz_watches[FZ_WATCHES];
static unsigned fz_nwatches;

/* The VM the harness is acting on: a device's loop handle is NULL here
 * (both VMs run their virtio transports inline), so the watches are keyed
 * by this instead. */
static struct vm *fz_cur;

int evloop_add(struct evloop *l, int fd, uint32_t events, evloop_fn fn, void *opaque)
{
	(void)l;
	struct vm *vm = fz_cur;
	if (fd < 0 || !fn)
		return -EINVAL;
	for (unsigned i = 0; i < fz_nwatches; i++)
		FZ_CHECK(!(fz_watches[i].vm == vm && fz_watches[i].fd == fd)); /* epoll: EEXIST */
	FZ_CHECK(fz_nwatches < FZ_WATCHES);
	fz_watches[fz_nwatches++] = (struct fz_watch){ vm, fd, events, fn, opaque };
	return 0;
}

int evloop_mod(struct evloop *l, int fd, uint32_t events)
{
	(void)l;
	struct vm *vm = fz_cur;
	for (unsigned i = 0; i < fz_nwatches; i++)
		if (fz_watches[i].vm == vm && fz_watches[i].fd == fd) {
			fz_watches[i].events = events;
			return 0;
		}
	return -ENOENT;
}

int evloop_del(struct evloop *l, int fd)
{
	(void)l;
	struct vm *vm = fz_cur;
	for (unsigned i = 0; i < fz_nwatches; i++)
		if (fz_watches[i].vm == vm && fz_watches[i].fd == fd) {
			fz_watches[i] = fz_watches[--fz_nwatches];
			return 0;
		}
	return -ENOENT;
}

static void fz_loop_turn(struct vm *vm)
{
	fz_cur = vm;
	struct fz_watch snap[FZ_WATCHES];
	struct pollfd p[FZ_WATCHES];
	unsigned n = 0;
	for (unsigned i = 0; i < fz_nwatches; i++)
		if (fz_watches[i].vm == vm) {
			snap[n] = fz_watches[i];
			p[n] = (struct pollfd){ .fd = snap[n].fd, .events = (short)snap[n].events };
			n++;
		}
	if (n == 0 || poll(p, n, 0) <= 0)
		return;
	for (unsigned i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		bool live = false;
		for (unsigned k = 0; k < fz_nwatches; k++)
			live |= fz_watches[k].vm == vm && fz_watches[k].fd == snap[i].fd &&
				fz_watches[k].fn == snap[i].fn;
		if (live)
			snap[i].fn(snap[i].opaque, (uint32_t)p[i].revents);
	}
}

/* ---- the two VMs ---- */

/* A device with a snapshot section (in registry order). */
struct fz_sect {
	const struct snap_ops *ops;
	void *dev;
};

struct fz_world {
	struct vm vm;
	struct fz_sect sect[32];
	uint8_t *ram;
	int disk; /* a memfd: the virtio-blk image */
	char disk_path[32];
	int peer; /* virtio-net's back end: the other end of its socket */
};
static struct fz_world fz_a, fz_b;
static const char fz_fw_file[] = "0123456789abcdef";

/* Every saveable device hvmm has without KVM, in vm_create's order (the
 * IOMMU aside: it changes every DMA and route, test_snapshot_pci has its
 * own round trip). The registry has exactly these, one each. */
static const char *const fz_names[] = {
	"pci-host", "uart", "i8042", "sysreset", "boot-timer", "fw_cfg", "acpi-pm", "rtc", "ioapic",
	"pic", "pit", "pc-testdev", "pci-testdev", "edu", "virtio-rng", "virtio-console", "virtio-blk",
	"virtio-net",
};
#define FZ_NDEVS (sizeof(fz_names) / sizeof(fz_names[0]))

static void fz_world_up(struct fz_world *w)
{
	struct vm *vm = &w->vm;
	fz_cur = vm;
	if (!w->ram) {
		w->ram = fz_guarded_map(FZ_RAM);
		FZ_CHECK(w->ram != NULL);
		w->disk = memfd_create("fuzz-snapshot-disk", MFD_CLOEXEC);
		FZ_CHECK(w->disk >= 0);
		snprintf(w->disk_path, sizeof(w->disk_path), "/proc/self/fd/%d", w->disk);
	} else {
		FZ_CHECK(madvise(w->ram, FZ_RAM, MADV_DONTNEED) == 0); /* zero again, cheaply */
	}
	/* an empty disk every time: what one input wrote does not reach the next */
	FZ_CHECK(ftruncate(w->disk, 0) == 0 && ftruncate(w->disk, FZ_DISK) == 0);
	memset(vm, 0, sizeof(*vm));
	vm->vm_fd = vm->kvm_fd = -1;
	vm->cfg.irqchip = IRQCHIP_SPLIT;
	vm->cfg.mem_size = FZ_RAM;
	vm->cfg.ncpus = 1;
	vm->cfg.console_virtio = true;
	pthread_mutex_init(&vm->stop_lock, NULL);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	fz_mem_one(&vm->mem, w->ram, FZ_RAM);
	int sv[2];
	FZ_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	w->peer = sv[1];
	char err[256];
	FZ_CHECK(pci_init(vm) == 0);
	/* the registry's own walk, as vm.c does it, with every legacy and PCI
	 * device but hyperv-testdev asked for, and virtio's rng, console and a
	 * disk (the network's socket back end is attached below) */
	vm->cfg.serial = SERIAL_NONE;
	vm->cfg.pc_testdev = vm->cfg.pci_testdev = vm->cfg.edu = true;
	vm->cfg.rng = true;
	vm->cfg.nr_disks = 1;
	vm->cfg.disks[0] = (struct vm_disk){ .path = w->disk_path };
	fz_vm_env(vm, true, false);
	FZ_CHECK_MSG(dev_create_all(&vm->env, err, sizeof(err)) == 0, "%s", err);
	irq_attach(vm, dev_find(&vm->devs, "pic", 0), dev_find(&vm->devs, "ioapic", 0));
	FZ_CHECK(fw_cfg_add_file(dev_find(&vm->devs, "fw_cfg", 0), "etc/test", fz_fw_file, sizeof(fz_fw_file) - 1) == 0);
	/* recorded in the registry as virtio-net's next instance */
	FZ_CHECK(virtio_net_attach_fd(&vm->env, sv[0], true, err, sizeof(err)) == 0);
	const struct dev_registry *r = &vm->devs;
	FZ_CHECK(!r->unsupported);
	unsigned n = 0;
	for (int i = 0; i < r->nr; i++) {
		if (!r->v[i].ops->snap.name)
			continue; /* nothing to save (debug-exit) */
		FZ_CHECK(n < FZ_NDEVS);
		FZ_CHECK_MSG(!strcmp(r->v[i].ops->name, fz_names[n]) && r->v[i].index == 0,
			     "registry entry %d is %s", i, r->v[i].ops->name);
		w->sect[n++] = (struct fz_sect){ &r->v[i].ops->snap, r->v[i].dev };
	}
	FZ_CHECK(n == FZ_NDEVS);
}

static void fz_world_down(struct fz_world *w)
{
	struct vm *vm = &w->vm;
	fz_cur = vm;
	dev_destroy_all(&vm->devs); /* as vm_destroy: virtio's too, the last first */
	pci_destroy(vm);
	irq_destroy(vm);
	snapshot_registry_free(vm);
	bus_free(&vm->pio);
	bus_free(&vm->mmio);
	pthread_mutex_destroy(&vm->stop_lock);
	close(w->peer);
	w->peer = -1;
}

/* ---- loads ---- */

/* An error message as snap_ops promises it: there, and one line. */
static void fz_check_err(const char *what, const char *err)
{
	FZ_CHECK_MSG(err[0] != 0, "%s: a load failed without a reason", what);
	FZ_CHECK_MSG(!strchr(err, '\n'), "%s: error of more than one line: \"%s\"", what, err);
}

/*
 * A payload that loads is saved back byte for byte: a load that drops or
 * normalizes a field would lose state on every restore (or took a value no
 * save writes, which it should refuse). The clocks are pinned across the
 * load and the save, so time-based fields come back the same. One
 * documented exception: boot-timer marks older than this process come back
 * at its start (boot_timer.c), so their ages are not compared.
 */
static void fz_exact(const struct snap_ops *ops, void *dev, const uint8_t *p, size_t len)
{
	struct snap_buf sb = { 0 };
	char err[256] = "";
	FZ_CHECK_MSG(ops->save(dev, &sb, err, sizeof(err)) == 0 && !sb.failed, "%s: save: %s", ops->name, err);
	if (!strcmp(ops->name, "boot-timer") && sb.len == len && len >= 8) {
		uint8_t *q = malloc(len);
		FZ_CHECK(q);
		memcpy(q, p, len);
		for (size_t off = 8; off + 16 <= len; off += 16) /* struct boot_timer_snap_mark.age_ns */
			memset(q + off, 0, 8), memset(sb.data + off, 0, 8);
		bool same = !memcmp(q, sb.data, len);
		free(q);
		FZ_CHECK_MSG(same, "boot-timer: a loaded payload saves back different");
	} else {
		size_t k = 0;
		while (k < len && k < sb.len && sb.data[k] == p[k])
			k++;
		FZ_CHECK_MSG(sb.len == len && k == len,
			     "%s: loaded %zu bytes, saved %zu back, first difference at byte %zu: 0x%02x, was 0x%02x",
			     ops->name, len, sb.len, k, k < sb.len ? sb.data[k] : 0, k < len ? p[k] : 0);
	}
	snap_buf_free(&sb);
}

static bool fz_loaded[FZ_NDEVS];
static bool fz_b_up; /* VM B built for this input */
static bool fz_failed; /* a load failed: the restore stops here */

/* Payload p of device i with version v into A, then the round trip. */
static void fz_load(unsigned i, const uint8_t *p, size_t len, uint32_t v)
{
	if (fz_failed || fz_loaded[i])
		return;
	fz_loaded[i] = true;
	const struct fz_sect *a = &fz_a.sect[i], *b = NULL;
	struct snap_cur c = { .p = p, .left = len };
	char err[512];
	memset(err, 0, sizeof(err));
	/* The clocks pinned from the load on: the PIT's count and the PM
	 * timer are loaded and saved as of one "now", so that a save of the
	 * loaded state is the payload again (fz_exact). */
	devices_snap_clock_pin(true);
	fz_cur = &fz_a.vm;
	int r = a->ops->load(a->dev, &c, v, err, sizeof(err));
	FZ_LOG("load %s v%u, %zu bytes: %d %s\n", a->ops->name, v, len, r, err);
	FZ_CHECK(r == 0 || r == -1);
	FZ_CHECK(c.left <= len);
	if (r < 0) {
		devices_snap_clock_pin(false);
		fz_check_err(a->ops->name, err);
		fz_failed = true;
		return;
	}
	if (c.bad || c.left) { /* snapshot_restore_apply: "state of the wrong length" */
		devices_snap_clock_pin(false);
		fz_failed = true;
		return;
	}
	/* A state that loaded saves, and what it saves loads into a fresh
	 * device and saves the same again. B is built at the first load that
	 * succeeds: most inputs fail early and never need it. */
	if (!fz_b_up) {
		fz_world_up(&fz_b);
		fz_b_up = true;
	}
	b = &fz_b.sect[i];
	fz_cur = &fz_b.vm; /* the round trip loads into B */
	memset(err, 0, sizeof(err));
	r = snapshot_roundtrip(a->ops, a->dev, b->dev, err, sizeof(err));
	if (r == 0)
		fz_exact(a->ops, a->dev, p, len);
	devices_snap_clock_pin(false);
	FZ_CHECK_MSG(r == 0, "%s: a loaded state does not survive save and load: %s", a->ops->name, err);
}

/* ---- the state file ---- */

static int fz_file = -1;
static char fz_file_path[32];

/* Bit 1 of byte 0: body_size and every CRC made right, as far as the
 * sections can be walked (what does not parse is left as it is). */
static void fz_fix_file(uint8_t *f, size_t len)
{
	if (len < sizeof(struct snap_header))
		return;
	struct snap_header h;
	memcpy(&h, f, sizeof(h));
	h.body_size = len - sizeof(h);
	size_t off = sizeof(h);
	for (uint32_t i = 0; i < h.nr_sections && len - off >= sizeof(struct snap_section); i++) {
		struct snap_section s;
		memcpy(&s, f + off, sizeof(s));
		if (s.size > len - off - sizeof(s))
			break;
		s.crc = (uint32_t)crc32(0, f + off + sizeof(s), (uInt)s.size);
		memcpy(f + off, &s, sizeof(s));
		off += sizeof(s) + (size_t)((s.size + 7) & ~7ull);
		if (off > len)
			break;
	}
	h.header_crc = 0;
	h.header_crc = (uint32_t)crc32(0, (const uint8_t *)&h, sizeof(h));
	memcpy(f, &h, sizeof(h));
}

/* The VM's options a state file carries: taken only whole, and only options
 * a snapshot may carry (never one that writes a file or opens a socket). */
static void fz_config(struct snap_cur *c, uint32_t ver)
{
	char **args = NULL;
	int n = -1;
	char err[300] = "";
	if (snap_config_parse(c, ver, &args, &n, err, sizeof(err)) < 0) {
		FZ_CHECK(args == NULL && n == 0);
		fz_check_err("snap_config_parse", err);
		return;
	}
	FZ_CHECK(n >= 0 && n <= 256 && args && args[n] == NULL);
	for (int i = 0; i < n; i++)
		FZ_CHECK(options_vm_arg_ok(args[i]));
	options_free_args(args, n);
}

static void fz_state_file(const uint8_t *data, size_t size, bool fix)
{
	if (fz_file < 0) {
		fz_file = memfd_create("fuzz-snapshot-state", MFD_CLOEXEC);
		FZ_CHECK(fz_file >= 0);
		snprintf(fz_file_path, sizeof(fz_file_path), "/proc/self/fd/%d", fz_file);
	}
	uint8_t *copy = malloc(size ? size : 1);
	FZ_CHECK(copy);
	memcpy(copy, data, size);
	if (fix)
		fz_fix_file(copy, size);
	FZ_CHECK(ftruncate(fz_file, 0) == 0);
	FZ_CHECK(pwrite(fz_file, copy, size, 0) == (ssize_t)size);
	free(copy);

	struct snap_reader r;
	char err[512];
	memset(err, 0, sizeof(err));
	if (snap_reader_open(&r, fz_file_path, err, sizeof(err)) < 0) {
		FZ_LOG("reader: %s\n", err);
		fz_check_err("snap_reader_open", err);
		FZ_CHECK(r.file == NULL);
		return;
	}
	FZ_CHECK(r.len == size && r.next == sizeof(struct snap_header));
	/* Accepted: every section lies inside the file, padding included. */
	size_t off = sizeof(struct snap_header);
	for (uint32_t i = 0; i < r.h.nr_sections; i++) {
		struct snap_section s;
		FZ_CHECK(off <= r.len && r.len - off >= sizeof(s));
		memcpy(&s, r.file + off, sizeof(s));
		off += sizeof(s);
		FZ_CHECK(s.size <= r.len - off && ((s.size + 7) & ~7ull) <= r.len - off);
		FZ_CHECK(s.name[SNAP_NAME_LEN - 1] == 0);
		off += (size_t)((s.size + 7) & ~7ull);
	}
	FZ_CHECK(off == r.len);
	/* Walked as a restore walks it, each section by its own name; a
	 * question for another one is refused and changes nothing. */
	for (uint32_t i = 0; i < r.h.nr_sections; i++) {
		struct snap_section s;
		memcpy(&s, r.file + r.next, sizeof(s));
		struct snap_cur c;
		uint32_t ver;
		size_t at = r.next;
		memset(err, 0, sizeof(err));
		FZ_CHECK(snap_reader_next(&r, s.name, s.instance + 1, &c, &ver, err, sizeof(err)) == -1);
		fz_check_err("snap_reader_next", err);
		FZ_CHECK(r.next == at);
		memset(err, 0, sizeof(err));
		FZ_CHECK(snap_reader_done(&r, err, sizeof(err)) == -1);
		fz_check_err("snap_reader_done", err);
		FZ_CHECK(snap_reader_next(&r, s.name, s.instance, &c, &ver, err, sizeof(err)) == 0);
		FZ_CHECK(c.p == r.file + at + sizeof(s) && c.left == s.size && ver == s.version);
		FZ_CHECK(r.next > at && r.next <= r.len);
		for (unsigned d = 0; d < FZ_NDEVS; d++)
			if (!strcmp(s.name, fz_names[d]) && s.instance == 0)
				fz_load(d, c.p, c.left, ver);
		if (!strcmp(s.name, "config"))
			fz_config(&c, ver);
	}
	struct snap_cur c;
	uint32_t ver;
	memset(err, 0, sizeof(err));
	FZ_CHECK(snap_reader_next(&r, "uart", 0, &c, &ver, err, sizeof(err)) == -1);
	fz_check_err("snap_reader_next at the end", err);
	FZ_CHECK(snap_reader_done(&r, err, sizeof(err)) == 0);
	snap_reader_close(&r);
}

/* ---- driving A ---- */

/* A virtio function's BAR 0 and its notify, common-config offsets, read
 * from configuration space now (the guest may have moved the BAR, or a
 * load may have: the harness follows). False if it has none decoded. */
struct fz_vdev {
	unsigned devfn;
	uint64_t bar0;
	unsigned common, notify, mult;
};

static bool fz_vdev_find(struct vm *vm, unsigned k, struct fz_vdev *f)
{
	struct virtio_dev *all[8];
	unsigned n = virtio_devices(&vm->devs, all, 8);
	if (!n)
		return false;
	memset(f, 0, sizeof(*f));
	f->devfn = virtio_dev_devfn(all[k % n]);
	uint32_t lo = pci_config_read(vm, f->devfn, 0x10, 4);
	f->bar0 = (lo & ~0xfull) | (uint64_t)pci_config_read(vm, f->devfn, 0x14, 4) << 32;
	unsigned found = 0, seen = 0;
	for (unsigned p = pci_config_read(vm, f->devfn, 0x34, 1) & ~3u; p && seen++ < 48;
	     p = pci_config_read(vm, f->devfn, p + 1, 1) & ~3u) {
		if (pci_config_read(vm, f->devfn, p, 1) != 0x09)
			continue;
		unsigned type = pci_config_read(vm, f->devfn, p + 3, 1);
		unsigned off = pci_config_read(vm, f->devfn, p + 8, 4);
		if (type == 1)
			f->common = off, found |= 1;
		if (type == 2)
			f->notify = off, f->mult = pci_config_read(vm, f->devfn, p + 16, 4), found |= 2;
	}
	return found == 3;
}

static uint64_t fz_bus(struct bus *b, uint64_t addr, unsigned size, bool write, uint64_t v)
{
	const struct bus_range *r = bus_find(b, addr, size);
	if (!r || !r->opaque)
		return ~0ull;
	FZ_LOG("%s %s %#lx/%u %#lx\n", b->name, write ? "write" : "read", addr, size, v);
	if (write) {
		r->ops->write(r->opaque, addr - r->base, size, size == 8 ? v : v & ((1ull << (8 * size)) - 1));
		return 0;
	}
	return r->ops->read(r->opaque, addr - r->base, size);
}

/* A driver's set-up of queues 0 and 1 (features: what is offered, masked
 * by the input), rings at fixed places per device. */
static void fz_vsetup(struct vm *vm, struct fz_in *in)
{
	struct fz_vdev f;
	unsigned k = (unsigned)fz_take(in, 1);
	uint32_t mask = (uint32_t)fz_take(in, 1) | (uint32_t)fz_take(in, 1) << 24;
	if (!fz_vdev_find(vm, k, &f))
		return;
	/* as a driver starts: memory decoding and bus mastering on */
	pci_config_write(vm, f.devfn, 0x04, 2, pci_config_read(vm, f.devfn, 0x04, 2) | 0x06);
	uint64_t cc = f.bar0 + f.common;
	fz_bus(&vm->mmio, cc + 0x14, 1, true, 0);
	fz_bus(&vm->mmio, cc + 0x14, 1, true, 3);
	fz_bus(&vm->mmio, cc + 0x00, 4, true, 0);
	uint32_t offered = (uint32_t)fz_bus(&vm->mmio, cc + 0x04, 4, false, 0);
	fz_bus(&vm->mmio, cc + 0x08, 4, true, 0);
	fz_bus(&vm->mmio, cc + 0x0c, 4, true, offered & ~mask);
	fz_bus(&vm->mmio, cc + 0x08, 4, true, 1);
	fz_bus(&vm->mmio, cc + 0x0c, 4, true, 1); /* VERSION_1 */
	fz_bus(&vm->mmio, cc + 0x14, 1, true, 0xb);
	for (unsigned q = 0; q < 2; q++) {
		uint64_t ring = 0x10000ull * (1 + (k % 8)) + 0x4000ull * q;
		fz_bus(&vm->mmio, cc + 0x16, 2, true, q);
		fz_bus(&vm->mmio, cc + 0x18, 2, true, 1u << (fz_take(in, 1) % 8));
		fz_bus(&vm->mmio, cc + 0x1a, 2, true, q);
		fz_bus(&vm->mmio, cc + 0x20, 8, true, ring);
		fz_bus(&vm->mmio, cc + 0x28, 8, true, ring + 0x1000);
		fz_bus(&vm->mmio, cc + 0x30, 8, true, ring + 0x2000);
		fz_bus(&vm->mmio, cc + 0x1c, 2, true, 1);
	}
	fz_bus(&vm->mmio, cc + 0x14, 1, true, 0xf);
}

/* A chain of one descriptor offered on queue q, wherever the queue's rings
 * are (the restored addresses, or the set-up's), then the kick. */
static void fz_voffer(struct vm *vm, struct fz_in *in)
{
	struct fz_vdev f;
	unsigned k = (unsigned)fz_take(in, 1), q = (unsigned)fz_take(in, 1) % 3;
	struct vq_desc d = {
		.addr = fz_take(in, 3) % FZ_RAM,
		.len = (uint32_t)fz_take(in, 2),
		.flags = (uint16_t)(fz_take(in, 1) & 7),
		.next = (uint16_t)fz_take(in, 1),
	};
	uint16_t slot = (uint16_t)fz_take(in, 1);
	if (!fz_vdev_find(vm, k, &f))
		return;
	uint64_t cc = f.bar0 + f.common;
	fz_bus(&vm->mmio, cc + 0x16, 2, true, q);
	uint16_t size = (uint16_t)fz_bus(&vm->mmio, cc + 0x18, 2, false, 0);
	uint64_t desc = fz_bus(&vm->mmio, cc + 0x20, 8, false, 0);
	uint64_t avail = fz_bus(&vm->mmio, cc + 0x28, 8, false, 0);
	if (size && size <= 1024 && desc < FZ_RAM && FZ_RAM - desc >= 16ull * size) {
		memcpy(fz_a.ram + desc + 16ull * (slot % size), &d, sizeof(d));
		if (avail < FZ_RAM && FZ_RAM - avail >= 6 + 2ull * size) {
			uint16_t idx;
			memcpy(&idx, fz_a.ram + avail + 2, 2);
			uint16_t head = slot % size;
			memcpy(fz_a.ram + avail + 4 + 2ull * (idx % size), &head, 2);
			idx++;
			memcpy(fz_a.ram + avail + 2, &idx, 2);
		}
	}
	fz_bus(&vm->mmio, f.bar0 + f.notify + q * f.mult, 2, true, q);
}

/* The operations, until the input ends (1024 at most). */
static void fz_drive(struct fz_in *in)
{
	struct vm *vm = &fz_a.vm;
	fz_cur = vm;
	for (unsigned ops = 0; in->n && ops < 1024; ops++) {
		unsigned op = (unsigned)fz_take(in, 1) % 14;
		switch (op) {
		case 0: /* port write */
		case 1: { /* port read */
			uint64_t port = fz_take(in, 2);
			unsigned size = 1u << (fz_take(in, 1) % 3);
			fz_bus(&vm->pio, port, size, op == 0, op == 0 ? fz_take(in, 4) : 0);
			break;
		}
		case 2: /* MMIO write in a device's range */
		case 3: { /* MMIO read */
			unsigned idx = (unsigned)fz_take(in, 1);
			uint64_t off = fz_take(in, 2);
			unsigned size = fz_size(in);
			if (!vm->mmio.nr)
				break;
			const struct bus_range *r = &vm->mmio.ranges[idx % vm->mmio.nr];
			fz_bus(&vm->mmio, r->base + off % r->len, size, op == 2, op == 2 ? fz_take(in, 8) : 0);
			break;
		}
		case 4: { /* configuration space */
			unsigned devfn = (unsigned)fz_take(in, 1), off = (unsigned)fz_take(in, 2) % 4096;
			unsigned size = 1u << (fz_take(in, 1) % 3);
			bool write = fz_take(in, 1) & 1;
			off &= ~(size - 1);
			if (write)
				pci_config_write(vm, devfn, off, size, (uint32_t)fz_take(in, 4));
			else
				pci_config_read(vm, devfn, off, size);
			break;
		}
		case 5: { /* RAM bytes */
			uint64_t gpa = fz_take(in, 3) % FZ_RAM;
			unsigned n = (unsigned)fz_take(in, 1) % 64 + 1;
			for (unsigned i = 0; i < n && gpa + i < FZ_RAM; i++)
				fz_a.ram[gpa + i] = (uint8_t)fz_take(in, 1);
			break;
		}
		case 6: { /* kick queue q of virtio function k */
			struct fz_vdev f;
			unsigned k = (unsigned)fz_take(in, 1), q = (unsigned)fz_take(in, 1) % 4;
			if (fz_vdev_find(vm, k, &f))
				fz_bus(&vm->mmio, f.bar0 + f.notify + q * f.mult, 2, true, q);
			break;
		}
		case 7:
			fz_vsetup(vm, in);
			break;
		case 8:
			fz_voffer(vm, in);
			break;
		case 9: /* the event loop turns */
			fz_loop_turn(vm);
			fz_cur = vm;
			break;
		case 10: { /* host input on the serial port */
			uint8_t buf[16];
			unsigned n = (unsigned)fz_take(in, 1) % sizeof(buf) + 1;
			for (unsigned i = 0; i < n; i++)
				buf[i] = (uint8_t)fz_take(in, 1);
			uart_receive(dev_find(&vm->devs, "uart", 0), buf, n);
			break;
		}
		case 11: /* an interrupt line */
			irq_set_line(vm, (unsigned)fz_take(in, 1) % IRQ_IOAPIC_PINS, fz_take(in, 1) & 1);
			break;
		case 12: /* a LAPIC EOI, an INTA cycle */
			ioapic_eoi(dev_find(&vm->devs, "ioapic", 0), (unsigned)fz_take(in, 1));
			pic_intack(dev_find(&vm->devs, "pic", 0));
			break;
		case 13: { /* a frame from the network back end, or host input on the console */
			uint8_t buf[64];
			unsigned n = (unsigned)fz_take(in, 1) % sizeof(buf) + 1;
			memset(buf, (int)fz_take(in, 1), n);
			if (send(fz_a.peer, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) > 0)
				fz_loop_turn(vm);
			fz_cur = vm;
			break;
		}
		}
	}
}

/* After the driving: every device of A still saves. */
static void fz_save_all(void)
{
	struct fz_world *r = &fz_a;
	fz_cur = &fz_a.vm;
	devices_snap_clock_pin(true);
	for (int i = 0; i < (int)FZ_NDEVS; i++) {
		struct snap_buf b = { 0 };
		char err[512] = "";
		int rc = r->sect[i].ops->save(r->sect[i].dev, &b, err, sizeof(err));
		FZ_CHECK_MSG(rc == 0 && !b.failed, "%s: save after the driving: %s", r->sect[i].ops->name, err);
		snap_buf_free(&b);
	}
	devices_snap_clock_pin(false);
}

/* ---- one input ---- */

static void fz_process_init(void)
{
	fz_debug = getenv("FUZZ_DEBUG") != NULL;
	/* the disk: synchronous I/O, deterministic (no io_uring workers) */
	setenv("HVMM_DISK_SYNC", "1", 1);
	/* the consoles' stdin: a socket nobody writes; stdout: a memfd
	 * emptied now and then (what transmit chains write) */
	int sv[2];
	FZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FZ_CHECK(dup2(sv[0], STDIN_FILENO) == STDIN_FILENO);
	close(sv[0]);
	int out = memfd_create("fuzz-snapshot-out", MFD_CLOEXEC);
	FZ_CHECK(out >= 0 && dup2(out, STDOUT_FILENO) == STDOUT_FILENO);
	close(out);
	fz_a.peer = fz_b.peer = -1;
}

static void fz_one(const uint8_t *data, size_t size, bool drive)
{
	fz_world_up(&fz_a);
	fz_b_up = false;
	memset(fz_loaded, 0, sizeof(fz_loaded));
	fz_failed = false;
	struct fz_in in = { data, size };
	uint8_t mode = (uint8_t)fz_take(&in, 1);
	if (mode & 1) {
		fz_state_file(in.p, in.n, mode & 2);
	} else {
		while (in.n) {
			unsigned dev = (unsigned)fz_take(&in, 1);
			if (dev == 0xff)
				break;
			uint32_t v = (uint32_t)fz_take(&in, 1);
			size_t len = (size_t)fz_take(&in, 3);
			if (len > in.n)
				len = in.n;
			fz_load(dev % FZ_NDEVS, in.p, len, v);
			in.p += len;
			in.n -= len;
		}
		if (drive && !fz_failed) {
			fz_drive(&in);
			fz_save_all();
		}
	}
	fz_world_down(&fz_a);
	if (fz_b_up)
		fz_world_down(&fz_b);
	FZ_CHECK(fz_nwatches == 0);
	static unsigned runs;
	if (++runs % 1024 == 0) {
		FZ_CHECK(ftruncate(STDOUT_FILENO, 0) == 0 && lseek(STDOUT_FILENO, 0, SEEK_SET) == 0);
		FZ_CHECK(fz_eventfds() == 0); /* no irqfd or ioeventfd left behind */
	}
}

/* ---- the seed corpus (FUZZ_SNAPSHOT_SEEDS=DIR) ---- */

static void fz_seed_write(const char *dir, const char *name, const void *p, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	FZ_CHECK(f && fwrite(p, 1, len, f) == len && fclose(f) == 0);
}

/* Operations that leave state in every device, encoded as fz_drive reads
 * them (built by helpers: a hand-written byte string drifts out of step). */
static struct snap_buf fz_drive_seed, fz_drive_tail;

static void fz_op_out(struct snap_buf *b, uint16_t port, unsigned size_sel, uint32_t v)
{
	uint8_t op[8] = { 0, (uint8_t)port, (uint8_t)(port >> 8), (uint8_t)size_sel,
			  (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
	snap_put(b, op, sizeof(op));
}

static void fz_op_in(struct snap_buf *b, uint16_t port, unsigned size_sel)
{
	uint8_t op[4] = { 1, (uint8_t)port, (uint8_t)(port >> 8), (uint8_t)size_sel };
	snap_put(b, op, sizeof(op));
}

static void fz_op_bytes(struct snap_buf *b, const uint8_t *p, size_t n)
{
	snap_put(b, p, n);
}

/* A chain of one descriptor on queue q of virtio function k (fz_voffer). */
static void fz_op_offer(struct snap_buf *b, unsigned k, unsigned q, uint32_t addr, uint16_t len,
			unsigned flags, unsigned slot)
{
	uint8_t op[10] = { 8, (uint8_t)k, (uint8_t)q, (uint8_t)addr, (uint8_t)(addr >> 8),
			   (uint8_t)(addr >> 16), (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)flags, 0 };
	snap_put(b, op, sizeof(op));
	uint8_t sl = (uint8_t)slot;
	snap_put(b, &sl, 1);
}

static void fz_build_drive_seed(void)
{
	struct snap_buf *b = &fz_drive_seed;
	/* the interrupt controllers first: ICW1 clears what is latched */
	static const uint8_t pic[][2] = { { 0x20, 0x11 }, { 0x21, 0x20 }, { 0x21, 0x04 }, { 0x21, 0x01 },
					  { 0xa0, 0x11 }, { 0xa1, 0x28 }, { 0xa1, 0x02 }, { 0xa1, 0x01 },
					  { 0x21, 0xe0 }, { 0xa1, 0xfb } };
	for (size_t i = 0; i < sizeof(pic) / sizeof(pic[0]); i++)
		fz_op_out(b, pic[i][0], 0, pic[i][1]);
	/* IOAPIC pin 4 edge vector 0x34, pin 10 level vector 0x3a (MMIO ops
	 * address ranges by index: through pc-testdev's line instead) */
	fz_op_out(b, PC_TESTDEV_IRQ_PORT + 10, 0, 1);
	/* UART: 8N1, divisor 3, FIFO, RX interrupt through OUT2, scratch, input */
	static const uint8_t uart[][2] = { { 3, 0x83 }, { 0, 0x03 }, { 1, 0x00 }, { 3, 0x03 },
					   { 2, 0x07 }, { 1, 0x01 }, { 4, 0x0b }, { 7, 0x5a } };
	for (size_t i = 0; i < sizeof(uart) / sizeof(uart[0]); i++)
		fz_op_out(b, (uint16_t)(UART_COM1_BASE + uart[i][0]), 0, uart[i][1]);
	fz_op_bytes(b, (const uint8_t[]){ 10, 1, 'h', 'i' }, 4);
	/* i8042: self test answer, a command waiting for its data byte */
	fz_op_out(b, 0x64, 0, 0xaa);
	fz_op_out(b, 0x64, 0, 0x60);
	fz_op_out(b, 0xcf9, 0, 0x02); /* SYS_RST kind, no reset */
	fz_op_out(b, BOOT_TIMER_PORT, 2, 7);
	/* fw_cfg: the file selected, 3 bytes read, half a DMA address */
	fz_op_out(b, FW_CFG_PORT_SEL, 1, 0x20);
	for (int i = 0; i < 3; i++)
		fz_op_in(b, FW_CFG_PORT_SEL + 1, 0);
	fz_op_out(b, FW_CFG_PORT_SEL + 4, 2, 0x78563412);
	fz_op_out(b, ACPI_PM_BASE + 2, 1, 0x0101); /* TMR_EN, PWRBTN_EN */
	/* RTC: a CMOS byte, register B, the index left at 0x41 */
	static const uint8_t rtc[][2] = { { 0x70, 0x40 }, { 0x71, 0xab }, { 0x70, 0x0e }, { 0x71, 0x11 },
					  { 0x70, 0x41 } };
	for (size_t i = 0; i < sizeof(rtc) / sizeof(rtc[0]); i++)
		fz_op_out(b, rtc[i][0], 0, rtc[i][1]);
	/* PIT: channel 0 rate generator, channel 1 latched, channel 2 square
	 * wave gated on through port 0x61 */
	static const uint8_t pit[][2] = { { 0x43, 0x34 }, { 0x40, 0x00 }, { 0x40, 0x40 }, { 0x43, 0x54 },
					  { 0x41, 0x80 }, { 0x43, 0x40 }, { 0x43, 0xb6 }, { 0x42, 0x45 },
					  { 0x42, 0x23 }, { 0x61, 0x01 } };
	for (size_t i = 0; i < sizeof(pit) / sizeof(pit[0]); i++)
		fz_op_out(b, pit[i][0], 0, pit[i][1]);
	fz_op_out(b, PC_TESTDEV_SCRATCH_PORT, 2, 0xdeadbeef);
	/* virtio: every function set up (rng, console, blk, net) */
	for (uint8_t k = 0; k < 4; k++)
		fz_op_bytes(b, (const uint8_t[]){ 7, k, 0, 0, 3, 3 }, 6);
	/* edu and pci-testdev: memory decoding and bus mastering on */
	for (unsigned slot = 1; slot < 8; slot++)
		fz_op_bytes(b, (const uint8_t[]){ 4, (uint8_t)(slot << 3), 0x04, 0, 1, 1, 0x06, 0, 0, 0 }, 10);
	/* the tail seeds reuse: chains offered and kicked, the loop turned */
	b = &fz_drive_tail;
	fz_op_offer(b, 0, 0, 0x80000, 0x40, 2, 0); /* rng: 64 bytes to fill */
	fz_op_offer(b, 2, 0, 0x80000, 0x40, 0, 1); /* blk: a malformed request */
	fz_op_offer(b, 3, 1, 0x90000, 0x10, 0, 0); /* net: a 16-byte frame */
	fz_op_bytes(b, (const uint8_t[]){ 5, 0x00, 0x90, 0x08, 4, 'h', 'e', 'l', 'l', 'o' }, 10);
	fz_op_offer(b, 1, 1, 0x90000, 5, 0, 0); /* console: "hello" */
	fz_op_bytes(b, (const uint8_t[]){ 13, 20, 0x42, 9, 12, 0x34 }, 6); /* a frame in; EOI, INTA */
	fz_op_in(b, UART_COM1_BASE, 0);
	fz_op_in(b, 0x60, 0);
	fz_op_in(b, 0x41, 0);
	snap_put(&fz_drive_seed, fz_drive_tail.data, fz_drive_tail.len);
	FZ_CHECK(!fz_drive_seed.failed && !fz_drive_tail.failed);
}

static void fz_frame(struct snap_buf *out, unsigned dev, uint32_t v, const uint8_t *p, size_t len)
{
	uint8_t h[5] = { (uint8_t)dev, (uint8_t)v, (uint8_t)len, (uint8_t)(len >> 8), (uint8_t)(len >> 16) };
	FZ_CHECK(len < 1u << 24);
	snap_put(out, h, 5);
	snap_put(out, p, len);
}

static void fz_make_seeds(const char *dir)
{
	mkdir(dir, 0755);
	fz_build_drive_seed();
	for (unsigned variant = 0; variant < 2; variant++) {
		fz_world_up(&fz_a);
		if (variant == 1) { /* A driven: live queues, programmed chips */
			struct fz_in in = { fz_drive_seed.data, fz_drive_seed.len };
			fz_drive(&in);
		}
		struct fz_world *r = &fz_a;
		fz_cur = &fz_a.vm;
		struct snap_buf all = { 0 };
		uint8_t mode = 0;
		snap_put(&all, &mode, 1);
		struct snap_writer w;
		snap_writer_init(&w, FZ_RAM, 1, IRQCHIP_SPLIT);
		devices_snap_clock_pin(true);
		for (int i = 0; i < (int)FZ_NDEVS; i++) {
			struct snap_buf b = { 0 };
			char err[256] = "";
			FZ_CHECK(r->sect[i].ops->save(r->sect[i].dev, &b, err, sizeof(err)) == 0 && !b.failed);
			/* pc-testdev's 64 KiB of iomem only in its own seed: the
			 * all-device seeds stay ~9 KiB, which the fuzzer mutates
			 * where it matters */
			if (strcmp(r->sect[i].ops->name, "pc-testdev") != 0) {
				fz_frame(&all, (unsigned)i, 1, b.data, b.len);
				snap_section_begin(&w, r->sect[i].ops->name, 0, 1);
				snap_put(&w.body, b.data, b.len);
				snap_section_end(&w);
			}
			/* one device, then driving it: its own seed */
			struct snap_buf one = { 0 };
			snap_put(&one, &mode, 1);
			fz_frame(&one, (unsigned)i, 1, b.data, b.len);
			uint8_t end = 0xff;
			snap_put(&one, &end, 1);
			snap_put(&one, fz_drive_tail.data, fz_drive_tail.len);
			FZ_LOG("seed: %s: %zu bytes\n", r->sect[i].ops->name, b.len);
			char name[64];
			snprintf(name, sizeof(name), "%s-%s", variant ? "driven" : "fresh", r->sect[i].ops->name);
			if (variant == 1 || i == 0)
				fz_seed_write(dir, name, one.data, one.len);
			if (variant == 1 && b.len > 8) { /* truncated, and a byte flipped */
				struct snap_buf bad = { 0 };
				snap_put(&bad, &mode, 1);
				fz_frame(&bad, (unsigned)i, 1, b.data, b.len - 1);
				snprintf(name, sizeof(name), "cut-%s", r->sect[i].ops->name);
				if (i % 3 == 0)
					fz_seed_write(dir, name, bad.data, bad.len);
				snap_buf_free(&bad);
			}
			snap_buf_free(&one);
			snap_buf_free(&b);
		}
		devices_snap_clock_pin(false);
		uint8_t end = 0xff;
		snap_put(&all, &end, 1);
		snap_put(&all, fz_drive_tail.data, fz_drive_tail.len);
		fz_seed_write(dir, variant ? "driven-all" : "fresh-all", all.data, all.len);

		/* the same as a state file (bit 0), as the writer makes it */
		w.h.body_size = w.body.len;
		struct snap_header h = w.h;
		h.header_crc = 0;
		h.header_crc = (uint32_t)crc32(0, (const uint8_t *)&h, sizeof(h));
		struct snap_buf file = { 0 };
		uint8_t fmode = 1;
		snap_put(&file, &fmode, 1);
		snap_put(&file, &h, sizeof(h));
		snap_put(&file, w.body.data, w.body.len);
		FZ_CHECK(!file.failed);
		fz_seed_write(dir, variant ? "file-driven" : "file-fresh", file.data, file.len);
		if (variant == 1) {
			/* broken files: truncated; a payload byte changed (with and
			 * without the CRCs made right); a section too large */
			fz_seed_write(dir, "file-cut", file.data, file.len - 100);
			file.data[1 + sizeof(h) + 48 + 3] ^= 0x40;
			fz_seed_write(dir, "file-crc", file.data, file.len);
			file.data[0] = 3;
			fz_seed_write(dir, "file-fixed", file.data, file.len);
			file.data[1 + sizeof(h) + 32] = 0xff;
			fz_seed_write(dir, "file-big", file.data, file.len);
		}
		snap_buf_free(&file);
		snap_writer_free(&w);
		snap_buf_free(&all);
		fz_world_down(&fz_a);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fz_process_init();
	const char *seeds = getenv("FUZZ_SNAPSHOT_SEEDS");
	if (seeds) {
		fz_make_seeds(seeds);
		exit(0);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_one(data, size, true);
	return 0;
}
