/*
 * libFuzzer target for QEMU's fw_cfg device (src/devices/fw_cfg.c): the
 * selector and data ports and the DMA interface, whose FWCfgDmaAccess and
 * buffer the guest places anywhere (or nowhere) in RAM. A fake VM (no KVM)
 * with 256 KiB of guard-paged RAM; the files the host side adds come from
 * the input too (names, sizes, duplicates, bad names).
 *
 * Checked against a reference model kept here (what the spec says each
 * item holds): every byte read through the data port and every byte a DMA
 * read puts in RAM is the selected item's byte at the current offset (zero
 * past its end); the DMA control word reads back 0 or just the error bit,
 * the error bit exactly when the buffer is outside RAM or a write was asked
 * for; a descriptor outside RAM changes nothing; the directory lists the
 * files sorted with their sizes and selectors; fw_cfg_add_file's result is
 * the one the model predicts. Plus the sanitizers and the guard pages.
 *
 * Input:
 *   u8 n          files to add (n % 8), each: u8 name length (% 60, so
 *                 too long ones occur), the name bytes, u16 size (data:
 *                 a repeating pattern from the name)
 *   then operations, the first byte selecting (see fz_run); numbers
 *   little-endian, zeros once the input runs out.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "devices/devices.h"
#include "snapshot.h"
#include "vm.h"
#include "fuzz_common.h"
#include "fuzz_env.h"

#define FZ_CHECK(c)                                                                            \
	do {                                                                                   \
		if (!(c)) {                                                                    \
			fprintf(stderr, "fuzz_fw_cfg: check failed at line %d: %s\n", __LINE__, #c); \
			abort();                                                               \
		}                                                                              \
	} while (0)

#define FZ_RAM (256 * 1024ull)
#define FZ_FILES 8
#define FZ_NCPUS 3

void vm_stop(struct vm *vm, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	(void)vm, (void)reason, (void)status, (void)fmt;
}

static struct vm fz_vm;
static uint8_t *fz_ram;

/* ---- the reference model ---- */

struct fz_file {
	char name[FW_CFG_NAME_MAX + 1];
	uint8_t data[65536];
	uint32_t len;
};
static struct fz_file fz_files[FZ_FILES];
static unsigned fz_nfiles;
static uint8_t fz_dir[4 + FZ_FILES * 64];
static uint8_t fz_fixed[5][8];

static uint16_t fz_sel;
static uint32_t fz_off;

static void fz_be(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static void fz_model_dir(void)
{
	memset(fz_dir, 0, sizeof(fz_dir));
	fz_be(fz_dir, fz_nfiles, 4);
	for (unsigned i = 0; i < fz_nfiles; i++) {
		uint8_t *e = fz_dir + 4 + 64 * i;
		fz_be(e, fz_files[i].len, 4);
		fz_be(e + 4, 0x20 + i, 2);
		memcpy(e + 8, fz_files[i].name, strlen(fz_files[i].name));
	}
}

/* The item a selector names in the model: its bytes and length. */
static const uint8_t *fz_item(uint16_t sel, uint32_t *len)
{
	*len = 0;
	if (sel & 0x8000)
		return NULL;
	uint16_t key = sel & 0x3fff;
	static const uint16_t fixed_keys[5] = { 0x00, 0x01, 0x03, 0x05, 0x0f };
	static const uint32_t fixed_len[5] = { 4, 4, 8, 2, 2 };
	for (unsigned i = 0; i < 5; i++)
		if (key == fixed_keys[i]) {
			*len = fixed_len[i];
			return fz_fixed[i];
		}
	if (key == 0x19) {
		*len = 4 + 64 * fz_nfiles;
		return fz_dir;
	}
	if (key >= 0x20 && key - 0x20u < fz_nfiles) {
		*len = fz_files[key - 0x20].len;
		return fz_files[key - 0x20].data;
	}
	return NULL;
}

static uint8_t fz_model_byte(void)
{
	uint32_t len;
	const uint8_t *d = fz_item(fz_sel, &len);
	if (fz_off < len)
		return d[fz_off++];
	return 0;
}

/* fw_cfg_add_file with the result the model predicts. */
static void fz_add_file(const char *name, uint32_t len)
{
	size_t nlen = strlen(name);
	int want = 0;
	unsigned pos = 0;
	while (pos < fz_nfiles && strcmp(fz_files[pos].name, name) < 0)
		pos++;
	if (nlen == 0 || nlen > FW_CFG_NAME_MAX)
		want = -22; /* EINVAL */
	else if (pos < fz_nfiles && strcmp(fz_files[pos].name, name) == 0)
		want = -17; /* EEXIST */
	/* The contents: any bytes that differ from file to file and along a
	 * file do (the model keeps its own copy), made a word at a time: a
	 * byte-wise loop over up to 64 KiB per file, every iteration traced by
	 * the coverage instrumentation, was a third of this target's time. */
	static uint64_t data[65536 / 8], ramp[65536 / 8];
	if (!ramp[1])
		for (unsigned j = 0; j < 65536 / 8; j++)
			ramp[j] = (j + 1) * 0x0807060504030201ull;
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a of the name */
	for (size_t k = 0; k < nlen; k++)
		h = (h ^ (uint8_t)name[k]) * 0x100000001b3ull;
	for (uint32_t j = 0; j < (len + 7) / 8; j++)
		data[j] = ramp[j] ^ h;
	int r = fw_cfg_add_file(dev_find(&fz_vm.devs, "fw_cfg", 0), name, data, len);
	FZ_LOG("add %s (%u bytes) = %d\n", name, len, r);
	FZ_CHECK(r == want);
	if (r)
		return;
	memmove(&fz_files[pos + 1], &fz_files[pos], (fz_nfiles - pos) * sizeof(fz_files[0]));
	memset(fz_files[pos].name, 0, sizeof(fz_files[pos].name));
	memcpy(fz_files[pos].name, name, nlen);
	memcpy(fz_files[pos].data, data, len);
	fz_files[pos].len = len;
	fz_nfiles++;
	fz_model_dir();
}

/* ---- the VM ---- */

static void fz_vm_build(void)
{
	memset(&fz_vm, 0, sizeof(fz_vm));
	fz_vm.vm_fd = fz_vm.kvm_fd = -1;
	fz_vm.cfg.mem_size = 64ull << 20; /* what RAM_SIZE reports; the DMA sees fz_ram */
	fz_vm.cfg.ncpus = FZ_NCPUS;
	pthread_mutex_init(&fz_vm.stop_lock, NULL);
	bus_init(&fz_vm.pio, "pio");
	bus_init(&fz_vm.mmio, "mmio");
	memset(fz_ram, 0, FZ_RAM);
	fz_mem_one(&fz_vm.mem, fz_ram, FZ_RAM);
	fz_vm_env(&fz_vm, false, false);
	FZ_CHECK(fz_dev(&fz_vm, &fw_cfg_dev_ops));

	fz_nfiles = 0;
	fz_model_dir();
	memset(fz_fixed, 0, sizeof(fz_fixed));
	memcpy(fz_fixed[0], "QEMU", 4);
	fz_fixed[1][0] = 3; /* traditional | DMA */
	for (unsigned i = 0; i < 8; i++)
		fz_fixed[2][i] = (uint8_t)(fz_vm.cfg.mem_size >> (8 * i));
	fz_fixed[3][0] = fz_fixed[4][0] = FZ_NCPUS;
	fz_sel = 0;
	fz_off = 0;
}

static void fz_vm_free(void)
{
	dev_destroy_all(&fz_vm.devs);
	snapshot_registry_free(&fz_vm);
	bus_free(&fz_vm.pio);
	bus_free(&fz_vm.mmio);
	pthread_mutex_destroy(&fz_vm.stop_lock);
}

static uint64_t fz_pio(uint16_t port, unsigned size, bool write, uint64_t v)
{
	const struct bus_range *r = bus_find(&fz_vm.pio, port, 1);
	if (!r)
		return 0;
	FZ_LOG("pio %s %#x/%u %#lx\n", write ? "write" : "read", port, size, v);
	if (write) {
		r->ops->write(r->opaque, port - r->base, size, v);
		return 0;
	}
	return r->ops->read(r->opaque, port - r->base, size);
}

/* The DMA register got a whole address: run the model's transfer beside the
 * device's and compare. */
static void fz_dma(uint64_t gpa, bool as_halves)
{
	uint8_t acc[16];
	bool have = gpa <= FZ_RAM - 16;
	if (have)
		memcpy(acc, fz_ram + gpa, 16);
	uint32_t control = 0, length = 0;
	uint64_t addr = 0;
	for (unsigned i = 0; i < 4; i++)
		control = control << 8 | acc[i], length = length << 8 | acc[4 + i];
	for (unsigned i = 0; i < 8; i++)
		addr = addr << 8 | acc[8 + i];
	if (!have)
		control = length = 0;
	/* snapshot of RAM to compare what a read wrote and what it must not */
	static uint8_t before[FZ_RAM];
	memcpy(before, fz_ram, FZ_RAM);

	uint64_t be = __builtin_bswap64(gpa);
	if (as_halves) {
		fz_pio(FW_CFG_PORT_DMA, 4, true, be & 0xffffffffu);
		fz_pio(FW_CFG_PORT_DMA + 4, 4, true, be >> 32);
	} else {
		fz_pio(FW_CFG_PORT_DMA, 8, true, be);
	}
	if (!have) {
		FZ_CHECK(memcmp(before, fz_ram, FZ_RAM) == 0);
		return;
	}
	bool error = false;
	uint64_t dst = 0, n = 0;
	if (control & 0x08) {
		fz_sel = (uint16_t)(control >> 16);
		fz_off = 0;
	}
	if (control & 0x02) {
		if (length && (addr > FZ_RAM || length > FZ_RAM - addr))
			error = true;
		else
			dst = addr, n = length;
	} else if (control & 0x10) {
		error = true;
	} else if (control & 0x04) { /* skip: the offset stops at the item's end */
		uint32_t len;
		(void)fz_item(fz_sel, &len);
		uint64_t avail = fz_off < len ? len - fz_off : 0;
		fz_off += (uint32_t)(length < avail ? length : avail);
	}
	/* the bytes fz_model_byte() would give one by one, copied at once */
	if (n) {
		uint32_t len;
		const uint8_t *d = fz_item(fz_sel, &len);
		uint64_t k = fz_off < len ? len - fz_off : 0;
		if (k > n)
			k = n;
		if (k)
			memcpy(before + dst, d + fz_off, k);
		memset(before + dst + k, 0, n - k);
		fz_off += (uint32_t)k;
	}
	memset(before + gpa, 0, 4);
	before[gpa + 3] = error;
	if (memcmp(before, fz_ram, FZ_RAM) != 0) {
		for (uint64_t i = 0; i < FZ_RAM; i++)
			if (before[i] != fz_ram[i]) {
				fprintf(stderr, "fuzz_fw_cfg: RAM %#lx is %#x, the model says %#x\n", i,
					fz_ram[i], before[i]);
				break;
			}
		FZ_CHECK(!"DMA result differs from the model");
	}
}

static void fz_run(struct fz_in *in)
{
	unsigned ops = 0;
	while (in->n && ops++ < 1024) {
		uint8_t op = (uint8_t)fz_take(in, 1);
		switch (op % 8) {
		case 0: { /* select (16-bit write to the selector) */
			uint16_t sel = (uint16_t)fz_take(in, 2);
			fz_pio(FW_CFG_PORT_SEL, 2, true, sel);
			fz_sel = sel;
			fz_off = 0;
			break;
		}
		case 1: { /* data read at either port, any size: bytes in sequence */
			uint16_t port = FW_CFG_PORT_SEL + ((op >> 3) & 1);
			unsigned size = fz_size(in);
			uint64_t v = fz_pio(port, size, false, 0), want = 0;
			for (unsigned i = 0; i < size; i++)
				want |= (uint64_t)fz_model_byte() << (8 * i);
			FZ_CHECK(v == want);
			break;
		}
		case 2: { /* any other write to the two ports: ignored */
			unsigned off = (op >> 3) & 1, size = fz_size(in);
			uint64_t v = fz_take(in, 8);
			if (off == 0 && size == 2) {
				fz_sel = (uint16_t)v;
				fz_off = 0;
			}
			fz_pio(FW_CFG_PORT_SEL + off, size, true, v);
			break;
		}
		case 3: { /* DMA register: a write at any offset and size */
			unsigned off = (unsigned)fz_take(in, 1) % 8, size = fz_size(in);
			uint64_t v = fz_take(in, 8);
			if ((off == 0 && size == 8) || (off == 4 && size == 4))
				break; /* those start a transfer: op 5 does them with the model */
			fz_pio(FW_CFG_PORT_DMA + off, size, true, v);
			break;
		}
		case 4: { /* DMA register read: "QEMU CFG" */
			unsigned off = (unsigned)fz_take(in, 1) % 8, size = fz_size(in);
			uint64_t v = fz_pio(FW_CFG_PORT_DMA + off, size, false, 0);
			for (unsigned i = 0; i < size; i++)
				FZ_CHECK((uint8_t)(v >> (8 * i)) == (off + i < 8 ? "QEMU CFG"[off + i] : 0));
			break;
		}
		case 5: { /* a transfer: descriptor at gpa (often in RAM, sometimes not) */
			uint64_t gpa = op & 0x80 ? fz_take(in, 8) : fz_take(in, 3) % (FZ_RAM + 64);
			/* a write of only the high half first leaves the low half to this one */
			fz_dma(gpa, op & 0x40);
			break;
		}
		case 6: { /* a descriptor: control (often SELECT|READ), length, address */
			uint64_t gpa = fz_take(in, 3) % (FZ_RAM - 16);
			uint32_t control = (uint32_t)fz_take(in, 4), length = (uint32_t)fz_take(in, 2);
			uint64_t addr = op & 0x80 ? fz_take(in, 8) : fz_take(in, 3) % FZ_RAM;
			fz_be(fz_ram + gpa, control, 4);
			fz_be(fz_ram + gpa + 4, length, 4);
			fz_be(fz_ram + gpa + 8, addr, 8);
			break;
		}
		case 7: { /* poke RAM */
			uint64_t gpa = fz_take(in, 3) % FZ_RAM;
			unsigned n = (unsigned)fz_take(in, 1) + 1;
			for (unsigned i = 0; i < n && gpa + i < FZ_RAM; i++)
				fz_ram[gpa + i] = (uint8_t)fz_take(in, 1);
			break;
		}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (fz_debug < 0) {
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
		fz_ram = fz_guarded_map(FZ_RAM);
		FZ_CHECK(fz_ram != NULL);
	}
	fz_vm_build();
	struct fz_in in = { data, size };
	unsigned nf = (unsigned)fz_take(&in, 1) % FZ_FILES;
	for (unsigned i = 0; i < nf; i++) {
		char name[64] = { 0 };
		unsigned nlen = (unsigned)fz_take(&in, 1) % 60;
		for (unsigned k = 0; k < nlen; k++)
			name[k] = (char)fz_take(&in, 1);
		fz_add_file(name, (uint32_t)fz_take(&in, 2));
	}
	fz_run(&in);
	fz_vm_free();
	return 0;
}
