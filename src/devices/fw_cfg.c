/*
 * fw_cfg: QEMU's firmware configuration device, written from QEMU's
 * docs/specs/fw_cfg.rst so that guests and firmware written for QEMU find the
 * same items here.
 *
 *   0x510  selector, 16-bit write (little-endian, the I/O port flavour);
 *          resets the data offset
 *   0x511  data, byte reads in sequence; past the end of the item reads 0.
 *          Writes are ignored: every item is read-only (as in QEMU >= 2.4)
 *   0x514  DMA address register, 64-bit big-endian, written as two 32-bit
 *          halves (high at +0, low at +4; the low write starts the transfer).
 *          Reading it gives "QEMU CFG", the spec's DMA presence check.
 *
 * Items: signature "QEMU" (0x00), ID (0x01: traditional | DMA), RAM_SIZE
 * (0x03, u64 LE), NB_CPUS (0x05, u16 LE), MAX_CPUS (0x0f, u16 LE), the file
 * directory (0x19) and files from 0x20 up, kept sorted by name and numbered
 * in that order as QEMU does (so adding a file renumbers the ones after it:
 * add files before the guest runs).
 *
 * Everything the guest hands the DMA engine (the FWCfgDmaAccess address, the
 * buffer address and length) is hostile: it only reaches guest RAM through
 * mem_ptr()/mem_read()/mem_write(), and a bad range sets the error bit.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"
#include "devices_priv.h"

#define FW_CFG_CTL_LEN 2 /* selector at +0, data at +1 */
#define FW_CFG_DMA_LEN 8

#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_ID 0x0001
#define FW_CFG_RAM_SIZE 0x0003
#define FW_CFG_NB_CPUS 0x0005
#define FW_CFG_MAX_CPUS 0x000f
#define FW_CFG_FILE_DIR 0x0019
#define FW_CFG_FILE_FIRST 0x0020
#define FW_CFG_NR_FIXED FW_CFG_FILE_FIRST

/* Selector bits: 14 asked for write mode (ignored since QEMU 2.4), 15 picks
 * the architecture-specific range, of which hvmm has no items. */
#define FW_CFG_SEL_WRITE 0x4000
#define FW_CFG_SEL_ARCH 0x8000

#define FW_CFG_ID_TRADITIONAL 0x01
#define FW_CFG_ID_DMA 0x02

#define FW_CFG_DMA_CTL_ERROR 0x01
#define FW_CFG_DMA_CTL_READ 0x02
#define FW_CFG_DMA_CTL_SKIP 0x04
#define FW_CFG_DMA_CTL_SELECT 0x08
#define FW_CFG_DMA_CTL_WRITE 0x10

#define FW_CFG_DIR_ENTRY_SIZE 64

/* "QEMU CFG" as the big-endian 64-bit value the spec gives; reads of the DMA
 * register return its bytes in port order. */
static const uint8_t fw_cfg_dma_sig[FW_CFG_DMA_LEN] = { 'Q', 'E', 'M', 'U', ' ', 'C', 'F', 'G' };

struct fw_cfg_file {
	char name[FW_CFG_NAME_MAX + 1];
	uint8_t *data;
	uint32_t len;
};

/* The guest-visible state, plain data (the padding stays 0): a snapshot
 * copies it whole. */
struct fw_cfg_regs {
	uint64_t dma_addr; /* assembled big-endian halves; 0 after each transfer */
	uint32_t offset;
	uint16_t sel;
	uint16_t pad;
};

_Static_assert(sizeof(struct fw_cfg_regs) == 16, "fw_cfg_regs without implicit padding");

struct fw_cfg {
	/* vCPUs may hit the ports concurrently; the selector/offset pair and the
	 * DMA register are one piece of state. */
	pthread_mutex_t lock;
	struct guest_mem *mem; /* DMA's source and target */
	struct bus *pio;

	struct fw_cfg_regs r;

	/* the fixed items, encoded once at create time */
	uint8_t sig[4];
	uint8_t id[4];
	uint8_t ram_size[8];
	uint8_t nb_cpus[2];
	uint8_t max_cpus[2];

	struct fw_cfg_file *files; /* sorted by name; selector = FILE_FIRST + index */
	size_t nr_files, cap_files;
	uint8_t *dir; /* FWCfgFiles, rebuilt on every add */
	uint32_t dir_len;
};

static void fw_cfg_put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void fw_cfg_put_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t fw_cfg_get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* The bytes of the item sel names; an unknown key is an empty item, which
 * reads as zeros just like reading past the end of a real one. */
static void fw_cfg_item(const struct fw_cfg *fc, uint16_t sel, const uint8_t **data, uint32_t *len)
{
	*data = NULL;
	*len = 0;
	if (sel & FW_CFG_SEL_ARCH)
		return;
	uint16_t key = sel & ~FW_CFG_SEL_WRITE;
	switch (key) {
	case FW_CFG_SIGNATURE: *data = fc->sig; *len = sizeof(fc->sig); return;
	case FW_CFG_ID: *data = fc->id; *len = sizeof(fc->id); return;
	case FW_CFG_RAM_SIZE: *data = fc->ram_size; *len = sizeof(fc->ram_size); return;
	case FW_CFG_NB_CPUS: *data = fc->nb_cpus; *len = sizeof(fc->nb_cpus); return;
	case FW_CFG_MAX_CPUS: *data = fc->max_cpus; *len = sizeof(fc->max_cpus); return;
	case FW_CFG_FILE_DIR: *data = fc->dir; *len = fc->dir_len; return;
	default: break;
	}
	if (key >= FW_CFG_FILE_FIRST && (size_t)(key - FW_CFG_FILE_FIRST) < fc->nr_files) {
		const struct fw_cfg_file *f = &fc->files[key - FW_CFG_FILE_FIRST];
		*data = f->data;
		*len = f->len;
	}
}

static void fw_cfg_select(struct fw_cfg *fc, uint16_t sel)
{
	fc->r.sel = sel;
	fc->r.offset = 0;
}

/* Copy up to n bytes of the current item to out (zeros past its end) and
 * advance the offset; the offset stops at the item's end so it cannot wrap. */
static void fw_cfg_read_bytes(struct fw_cfg *fc, uint8_t *out, uint64_t n)
{
	const uint8_t *data;
	uint32_t len;
	fw_cfg_item(fc, fc->r.sel, &data, &len);
	uint64_t avail = fc->r.offset < len ? len - fc->r.offset : 0;
	uint64_t copy = n < avail ? n : avail;
	if (copy)
		memcpy(out, data + fc->r.offset, copy);
	memset(out + copy, 0, n - copy);
	fc->r.offset += (uint32_t)copy;
}

static void fw_cfg_skip(struct fw_cfg *fc, uint64_t n)
{
	const uint8_t *data;
	uint32_t len;
	fw_cfg_item(fc, fc->r.sel, &data, &len);
	uint64_t avail = fc->r.offset < len ? len - fc->r.offset : 0;
	fc->r.offset += (uint32_t)(n < avail ? n : avail);
}

/* ---- selector / data ports ---- */

static uint64_t fw_cfg_ctl_read(void *opaque, uint64_t offset, unsigned size)
{
	struct fw_cfg *fc = opaque;
	(void)offset; /* like QEMU, a byte read at either port reads data */
	uint8_t b[8];
	pthread_mutex_lock(&fc->lock);
	/* The I/O data port is 8 bits wide; a wider read gets the next bytes in
	 * order, as the spec's MMIO flavour does, rather than a guess. */
	fw_cfg_read_bytes(fc, b, size);
	pthread_mutex_unlock(&fc->lock);
	uint64_t v = 0;
	for (unsigned i = size; i-- > 0;)
		v = (v << 8) | b[i];
	return v;
}

static void fw_cfg_ctl_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct fw_cfg *fc = opaque;
	/* Only a 16-bit write at the selector selects; data writes are ignored
	 * (every item is read-only). */
	if (offset != 0 || size != 2)
		return;
	pthread_mutex_lock(&fc->lock);
	fw_cfg_select(fc, (uint16_t)value);
	pthread_mutex_unlock(&fc->lock);
}

static const struct bus_ops fw_cfg_ctl_ops = {
	.read = fw_cfg_ctl_read,
	.write = fw_cfg_ctl_write,
};

/* ---- DMA ---- */

/* Run the transfer described by the FWCfgDmaAccess at gpa; called with the
 * lock held. A descriptor outside RAM cannot even receive the error bit, so
 * it is dropped. */
static void fw_cfg_dma_run(struct fw_cfg *fc, uint64_t gpa)
{
	const struct guest_mem *mem = fc->mem;
	uint8_t acc[16];
	if (mem_read(mem, gpa, acc, sizeof(acc)) < 0)
		return;
	uint32_t control = (uint32_t)fw_cfg_get_be(acc, 4);
	uint32_t length = (uint32_t)fw_cfg_get_be(acc + 4, 4);
	uint64_t addr = fw_cfg_get_be(acc + 8, 8);
	bool error = false;

	if (control & FW_CFG_DMA_CTL_SELECT)
		fw_cfg_select(fc, (uint16_t)(control >> 16));
	if (control & FW_CFG_DMA_CTL_READ) {
		uint8_t *dst = length ? mem_ptr(mem, addr, length) : NULL;
		if (length && !dst)
			error = true;
		else if (length) {
			fw_cfg_read_bytes(fc, dst, length);
			mem_mark_dirty(mem, dst, length); /* a migration resends it */
		}
	} else if (control & FW_CFG_DMA_CTL_WRITE) {
		error = true; /* no item is writable */
	} else if (control & FW_CFG_DMA_CTL_SKIP) {
		fw_cfg_skip(fc, length);
	}

	/* Done: the control word reads 0, or just the error bit. */
	uint8_t result[4];
	fw_cfg_put_be(result, error ? FW_CFG_DMA_CTL_ERROR : 0, 4);
	mem_write(mem, gpa, result, sizeof(result));
}

static uint64_t fw_cfg_dma_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	uint64_t v = 0;
	for (unsigned i = size; i-- > 0;)
		v = (v << 8) | (offset + i < FW_CFG_DMA_LEN ? fw_cfg_dma_sig[offset + i] : 0);
	return v;
}

static void fw_cfg_dma_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct fw_cfg *fc = opaque;
	/* The register is big-endian: the guest's iowrite32be/outl puts the
	 * most significant byte at the lowest port, which reaches us as the
	 * low byte of value. Swap back to the address the guest meant. */
	pthread_mutex_lock(&fc->lock);
	if (size == 8 && offset == 0) {
		fc->r.dma_addr = __builtin_bswap64(value);
		goto run;
	}
	if (size != 4)
		goto out;
	uint32_t half = __builtin_bswap32((uint32_t)value);
	if (offset == 0) {
		fc->r.dma_addr = (fc->r.dma_addr & 0xffffffffull) | ((uint64_t)half << 32);
		goto out;
	}
	if (offset != 4)
		goto out;
	fc->r.dma_addr = (fc->r.dma_addr & ~0xffffffffull) | half;
run:
	fw_cfg_dma_run(fc, fc->r.dma_addr);
	fc->r.dma_addr = 0;
out:
	pthread_mutex_unlock(&fc->lock);
}

static const struct bus_ops fw_cfg_dma_ops = {
	.read = fw_cfg_dma_read,
	.write = fw_cfg_dma_write,
};

/* ---- host side ---- */

/*
 * ---- snapshot: the selector, the data offset and the DMA address ----
 *
 * The items themselves are not saved: the restore builds them again from
 * the same configuration (and the same fw_cfg_add_file calls), so the
 * selected item is there and the offset is checked against its length.
 */
static int fw_cfg_snap_save(void *dev, struct snap_buf *b, char *err, size_t n)
{
	struct fw_cfg *fc = dev;
	(void)err, (void)n;
	pthread_mutex_lock(&fc->lock);
	struct fw_cfg_regs w = fc->r;
	pthread_mutex_unlock(&fc->lock);
	snap_put(b, &w, sizeof(w));
	return 0;
}

static int fw_cfg_snap_load(void *dev, struct snap_cur *c, uint32_t version, char *err, size_t n)
{
	struct fw_cfg *fc = dev;
	struct fw_cfg_regs w;
	if (devices_snap_version("fw_cfg", version, err, n) < 0)
		return -1;
	snap_get(c, &w, sizeof(w));
	if (devices_snap_truncated("fw_cfg", c, err, n) < 0)
		return -1;
	if (w.pad) {
		snprintf(err, n, "fw_cfg: padding not zero");
		return -1;
	}
	pthread_mutex_lock(&fc->lock);
	const uint8_t *data;
	uint32_t len;
	fw_cfg_item(fc, w.sel, &data, &len);
	/* The offset never passes the item's end (fw_cfg_read_bytes stops it
	 * there); an unknown selector is an empty item, so offset 0. */
	bool ok = w.offset <= len;
	if (ok)
		fc->r = w;
	pthread_mutex_unlock(&fc->lock);
	if (!ok) {
		snprintf(err, n, "fw_cfg: offset %u past the end of item 0x%04x (%u bytes)", w.offset,
			 w.sel, len);
		return -1;
	}
	return 0;
}

static void fw_cfg_free(void *opaque)
{
	struct fw_cfg *fc = opaque;
	for (size_t i = 0; i < fc->nr_files; i++)
		free(fc->files[i].data);
	free(fc->files);
	free(fc->dir);
	pthread_mutex_destroy(&fc->lock);
	free(fc);
}

static void fw_cfg_destroy(void *dev)
{
	struct fw_cfg *fc = dev;
	devices_bus_forget(fc->pio, fc);
	fw_cfg_free(fc);
}

/* The fixed items from the options as they are now (RAM size, vCPUs). */
static int fw_cfg_create(const struct dev_env *env, int i, void **dev, char *err, size_t n)
{
	(void)i, (void)err, (void)n;
	struct fw_cfg *fc = calloc(1, sizeof(*fc));
	if (!fc)
		return -ENOMEM;
	pthread_mutex_init(&fc->lock, NULL);
	fc->mem = env->mem;
	fc->pio = env->pio;
	memcpy(fc->sig, "QEMU", 4);
	fw_cfg_put_le(fc->id, FW_CFG_ID_TRADITIONAL | FW_CFG_ID_DMA, 4);
	fw_cfg_put_le(fc->ram_size, env->cfg->mem_size, 8);
	/* No CPU hot-plug: the maximum is the count. */
	fw_cfg_put_le(fc->nb_cpus, (uint64_t)env->cfg->ncpus, 2);
	fw_cfg_put_le(fc->max_cpus, (uint64_t)env->cfg->ncpus, 2);
	/* An empty directory still has its count. */
	fc->dir = calloc(1, 4);
	int r = fc->dir ? 0 : -ENOMEM;
	fc->dir_len = 4;
	if (r == 0)
		r = bus_register(env->pio, FW_CFG_PORT_SEL, FW_CFG_CTL_LEN, &fw_cfg_ctl_ops, fc, "fw_cfg");
	if (r == 0)
		r = bus_register(env->pio, FW_CFG_PORT_DMA, FW_CFG_DMA_LEN, &fw_cfg_dma_ops, fc,
				 "fw_cfg dma");
	if (r < 0) {
		fw_cfg_destroy(fc);
		return r;
	}
	*dev = fc;
	return 0;
}

/* The registers; the items (and files) are the machine's and stay. */
static void fw_cfg_reset(void *dev)
{
	struct fw_cfg *fc = dev;
	pthread_mutex_lock(&fc->lock);
	memset(&fc->r, 0, sizeof(fc->r));
	pthread_mutex_unlock(&fc->lock);
}

const struct dev_ops fw_cfg_dev_ops = {
	.name = "fw_cfg",
	.desc = "fw_cfg",
	.create = fw_cfg_create,
	.reset = fw_cfg_reset,
	.snap = { .name = "fw_cfg", .version = 1, .save = fw_cfg_snap_save, .load = fw_cfg_snap_load },
	.destroy = fw_cfg_destroy,
};

/* Rebuild FWCfgFiles from the sorted list: be32 count, then 64-byte entries. */
static int fw_cfg_rebuild_dir(struct fw_cfg *fc)
{
	size_t len = 4 + fc->nr_files * FW_CFG_DIR_ENTRY_SIZE;
	uint8_t *dir = calloc(1, len);
	if (!dir)
		return -ENOMEM;
	fw_cfg_put_be(dir, fc->nr_files, 4);
	for (size_t i = 0; i < fc->nr_files; i++) {
		uint8_t *e = dir + 4 + i * FW_CFG_DIR_ENTRY_SIZE;
		fw_cfg_put_be(e, fc->files[i].len, 4);
		fw_cfg_put_be(e + 4, FW_CFG_FILE_FIRST + i, 2);
		/* e + 6: reserved, zero; the name is NUL-padded by calloc */
		memcpy(e + 8, fc->files[i].name, strlen(fc->files[i].name));
	}
	free(fc->dir);
	fc->dir = dir;
	fc->dir_len = (uint32_t)len;
	return 0;
}

int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, size_t len)
{
	if (!fc)
		return -ENODEV;
	size_t nlen = name ? strlen(name) : 0;
	/* The directory's name field is 56 bytes and NUL-terminated. */
	if (nlen == 0 || nlen > FW_CFG_NAME_MAX || len > UINT32_MAX || (len && !data))
		return -EINVAL;

	int r = 0;
	pthread_mutex_lock(&fc->lock);
	size_t pos = 0;
	while (pos < fc->nr_files && strcmp(fc->files[pos].name, name) < 0)
		pos++;
	if (pos < fc->nr_files && strcmp(fc->files[pos].name, name) == 0) {
		r = -EEXIST;
		goto out;
	}
	if (fc->nr_files >= FW_CFG_MAX_FILES) {
		r = -ENOSPC;
		goto out;
	}
	if (fc->nr_files == fc->cap_files) {
		size_t cap = fc->cap_files ? 2 * fc->cap_files : 16;
		struct fw_cfg_file *files = realloc(fc->files, cap * sizeof(*files));
		if (!files) {
			r = -ENOMEM;
			goto out;
		}
		fc->files = files;
		fc->cap_files = cap;
	}
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy) {
		r = -ENOMEM;
		goto out;
	}
	if (len)
		memcpy(copy, data, len);
	memmove(&fc->files[pos + 1], &fc->files[pos], (fc->nr_files - pos) * sizeof(*fc->files));
	struct fw_cfg_file *f = &fc->files[pos];
	memset(f, 0, sizeof(*f));
	memcpy(f->name, name, nlen);
	f->data = copy;
	f->len = (uint32_t)len;
	fc->nr_files++;
	if ((r = fw_cfg_rebuild_dir(fc)) < 0) {
		/* Undo, so the directory and the list never disagree. */
		free(copy);
		fc->nr_files--;
		memmove(&fc->files[pos], &fc->files[pos + 1], (fc->nr_files - pos) * sizeof(*fc->files));
	}
out:
	pthread_mutex_unlock(&fc->lock);
	return r;
}
