/*
 * libFuzzer target for the device side of the split virtqueue
 * (src/virtio/virtqueue.c): the guest controls every byte of the rings, the
 * descriptors, the indices, the queue size and the features, and may change
 * them between any two device operations.
 *
 * Guest RAM is two small regions laid out like hvmm's (one at 0, one above the
 * 4 GiB hole), each surrounded by PROT_NONE guard pages, so a stray read or
 * write just outside RAM faults at once; every iovec vq_pop() returns is also
 * checked against the regions here, independently of mem_ptr().
 *
 * Input: a header (flags, queue size, three ring addresses), then a stream of
 * operations (see fz_run below; fuzz/gen_seeds.py writes seeds).
 */
#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "memory.h"
#include "virtio/virtqueue.h"
#include "fuzz_common.h"

#define FZ_PAGE 4096ull
#define FZ_R0_SIZE (64 * 1024ull)  /* region 0 at gpa 0 */
#define FZ_R1_SIZE (16 * 1024ull)  /* region 1 at MEM_HOLE_END (4 GiB) */

/* [guard][R0][guard][R1][guard] */
static uint8_t *fz_map;
static struct guest_mem fz_mem;

static void fz_ram_init(void)
{
	size_t total = FZ_R0_SIZE + FZ_R1_SIZE + 3 * FZ_PAGE;
	fz_map = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fz_map == MAP_FAILED) {
		perror("mmap");
		abort();
	}
	uint8_t *r0 = fz_map + FZ_PAGE, *r1 = r0 + FZ_R0_SIZE + FZ_PAGE;
	if (mprotect(r0, FZ_R0_SIZE, PROT_READ | PROT_WRITE) || mprotect(r1, FZ_R1_SIZE, PROT_READ | PROT_WRITE)) {
		perror("mprotect");
		abort();
	}
	fz_mem.base = r0;
	fz_mem.ram_size = FZ_R0_SIZE + FZ_R1_SIZE;
	fz_mem.regions[0] = (struct mem_region){ .gpa = 0, .size = FZ_R0_SIZE, .hva = r0 };
	fz_mem.regions[1] = (struct mem_region){ .gpa = MEM_HOLE_END, .size = FZ_R1_SIZE, .hva = r1 };
}

/* Region layout for one input: one region (RAM ends at R0's top) or both. */
static void fz_ram_reset(bool two_regions)
{
	memset(fz_mem.regions[0].hva, 0, FZ_R0_SIZE);
	memset(fz_mem.regions[1].hva, 0, FZ_R1_SIZE);
	fz_mem.nr_regions = two_regions ? 2 : 1;
}

/* Independent of mem_ptr(): does [p, p+len) lie inside one RAM region? */
static bool fz_host_in_ram(const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p;
	for (int i = 0; i < fz_mem.nr_regions; i++) {
		uintptr_t lo = (uintptr_t)fz_mem.regions[i].hva, hi = lo + fz_mem.regions[i].size;
		if (a >= lo && a <= hi && len <= hi - a)
			return true;
	}
	return false;
}

/* The test's own guest-side pointer for [gpa, gpa+len), NULL if not in RAM. */
static uint8_t *fz_guest(uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < fz_mem.nr_regions; i++) {
		const struct mem_region *r = &fz_mem.regions[i];
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

/* ---- input reader --------------------------------------------------------- */

/*
 * A guest-physical address from 4 input bytes: the top two bits pick where
 * (region 0, region 1, just below the top of RAM, or one of the places a
 * hostile guest aims at), the low 16 bits an offset.
 */
static uint64_t fz_addr(struct fz_in *in)
{
	static const uint64_t wild[16] = {
		0xc0000000ull,          /* PCI hole: MMIO, not RAM */
		0xfec00000ull,          /* IOAPIC */
		0xfffff000ull,          /* just below 4 GiB */
		0x100000000ull - 0x10,  /* straddling the hole's end */
		1ull << 40,             /* far above RAM */
		1ull << 63,
		~0ull - 0xffff,         /* wraps when a length is added */
		~0ull - 0xf,
		FZ_R0_SIZE - 0x10,      /* straddles the end of region 0 */
		MEM_HOLE_END + FZ_R1_SIZE - 0x10,
		0xbffff000ull,
		0x0,
		0x1000,
		0x7fffffffffffffffull,
		0x100000000ull - 0x1000,
		0xffffffffull,
	};
	uint32_t v = (uint32_t)fz_take(in, 4);
	uint64_t off = v & 0xffff;
	switch (v >> 30) {
	case 0:
		return off;
	case 1:
		return MEM_HOLE_END + off;
	case 2:
		return mem_top(&fz_mem) - off;
	default:
		return wild[(v >> 16) & 15] + (off & 0xff);
	}
}

/* ---- the device under test ---------------------------------------------- */


static struct virtqueue fz_vq;
static bool fz_started;
static struct vq_elem fz_elem;
static bool fz_elem_valid;
/* heads popped and not yet pushed, oldest first */
static uint16_t fz_pending[VQ_MAX_SIZE];
static uint32_t fz_pending_in[VQ_MAX_SIZE];
static unsigned fz_npending;

/* An IOMMU stand-in (start flag 4): every 7th page faults, and pages 2 and
 * 3 of every four swap places, so buffers split and rings may not be
 * contiguous; the generation moves on every pop (flag 8), so the rings are
 * translated again each time. */
static uint64_t fz_gen;
static bool fz_gen_moves;

static int fz_xlate(void *opaque, uint64_t iova, bool write, uint64_t *gpa, uint64_t *avail)
{
	(void)opaque;
	(void)write;
	uint64_t page = iova >> 12;
	if (page % 7 == 3)
		return 6;
	*gpa = iova ^ ((page & 2) ? 0x1000 : 0);
	*avail = 0x1000 - (iova & 0xfff);
	return 0;
}

static uint64_t fz_generation(void *opaque)
{
	(void)opaque;
	return fz_gen;
}

static const struct vq_dma fz_dma = { fz_xlate, fz_generation, NULL };

static void fz_start(struct fz_in *in)
{
	uint8_t flags = (uint8_t)fz_take(in, 1);
	uint16_t size = (uint16_t)fz_take(in, 2);
	uint64_t desc = fz_addr(in), avail = fz_addr(in), used = fz_addr(in);
	fz_gen_moves = flags & 8;
	int r = vq_start_dma(&fz_vq, &fz_mem, (flags & 4) ? &fz_dma : NULL, size, desc, avail, used,
			     flags & 1, flags & 2);
	fz_started = r == VQ_OK;
	FZ_LOG("start size %u desc 0x%lx avail 0x%lx used 0x%lx ev %d ind %d -> %d\n", size, desc, avail,
	       used, flags & 1, !!(flags & 2), r);
	fz_npending = 0;
	fz_elem_valid = false;
	if (!fz_started) {
		assert(r == VQ_ERR_RING || ((flags & 4) && r == VQ_ERR_DMA));
		return;
	}
	/* vq_start's promise: a power-of-two size and three rings inside RAM */
	assert(size && size <= VQ_MAX_SIZE && !(size & (size - 1)));
	assert(fz_host_in_ram(fz_vq.desc, 16ull * size));
	assert(fz_host_in_ram(fz_vq.avail, 6ull + 2ull * size));
	assert(fz_host_in_ram(fz_vq.used, 6ull + 8ull * size));
}

static void fz_check_iov(const struct iovec *iov, unsigned n, uint64_t total, bool write)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < n; i++) {
		assert(fz_host_in_ram(iov[i].iov_base, iov[i].iov_len));
		sum += iov[i].iov_len;
		if (!iov[i].iov_len)
			continue;
		/* touch both ends: a wrong pointer faults on a guard page */
		volatile uint8_t *b = iov[i].iov_base;
		if (write) {
			b[0] ^= 0x5a;
			b[iov[i].iov_len - 1] ^= 0xa5;
		} else {
			(void)b[0];
			(void)b[iov[i].iov_len - 1];
		}
	}
	assert(sum == total);
}

static void fz_pop(void)
{
	if (fz_gen_moves)
		fz_gen++;
	bool work = vq_has_work(&fz_vq);
	int r = vq_pop(&fz_vq, &fz_elem);
	FZ_LOG("pop -> %d (%s) head %u out %u/%lu in %u/%lu\n", r, r < 0 ? vq_err_str(r) : "",
	       r == 1 ? fz_elem.head : 0, r == 1 ? fz_elem.n_out : 0, r == 1 ? fz_elem.out_len : 0,
	       r == 1 ? fz_elem.n_in : 0, r == 1 ? fz_elem.in_len : 0);
	if (r < 0) {
		/* a malformed ring: the device marks DEVICE_NEEDS_RESET and stops */
		assert(r >= VQ_ERR_DMA);
		assert(vq_err_str(r) != NULL);
		fz_started = false;
		fz_elem_valid = false;
		return;
	}
	assert(r == 0 || r == 1);
	if (r == 0) {
		assert(!work);
		fz_elem_valid = false;
		return;
	}
	assert(work);
	assert(fz_elem.head < fz_vq.size);
	assert(fz_elem.n_out <= VQ_MAX_SEGS && fz_elem.n_in <= VQ_MAX_SEGS);
	assert(fz_elem.n_out + fz_elem.n_in <= VQ_MAX_SEGS);
	fz_check_iov(fz_elem.out, fz_elem.n_out, fz_elem.out_len, false);
	fz_check_iov(fz_elem.in, fz_elem.n_in, fz_elem.in_len, true);
	fz_elem_valid = true;
	/* A hostile guest may offer one head many times, so more chains than
	 * the queue size can be in flight; the test just stops recording. */
	if (fz_npending == VQ_MAX_SIZE)
		return;
	fz_pending[fz_npending] = fz_elem.head;
	fz_pending_in[fz_npending] = fz_elem.in_len > UINT32_MAX ? UINT32_MAX : (uint32_t)fz_elem.in_len;
	fz_npending++;
}

static void fz_push(struct fz_in *in)
{
	uint32_t written = (uint32_t)fz_take(in, 4);
	if (!fz_npending)
		return;
	if (written > fz_pending_in[0])
		written = fz_pending_in[0];
	vq_push(&fz_vq, fz_pending[0], written);
	memmove(fz_pending, fz_pending + 1, (fz_npending - 1) * sizeof(fz_pending[0]));
	memmove(fz_pending_in, fz_pending_in + 1, (fz_npending - 1) * sizeof(fz_pending_in[0]));
	fz_npending--;
}

/* Guest side: write bytes anywhere in RAM (rings, descriptors, buffers). */
static void fz_poke(struct fz_in *in)
{
	uint64_t gpa = fz_addr(in);
	unsigned n = (unsigned)fz_take(in, 1) + 1;
	uint8_t buf[256];
	for (unsigned i = 0; i < n; i++)
		buf[i] = (uint8_t)fz_take(in, 1);
	uint8_t *p = fz_guest(gpa, n);
	if (p)
		memcpy(p, buf, n);
}

/* Guest side: a descriptor at index i of the current table. */
static void fz_put_desc(struct fz_in *in)
{
	uint16_t i = (uint16_t)fz_take(in, 2);
	struct vq_desc d;
	d.addr = fz_take(in, 1) & 1 ? fz_addr(in) : fz_take(in, 8);
	d.len = (uint32_t)fz_take(in, 4);
	d.flags = (uint16_t)fz_take(in, 2);
	d.next = (uint16_t)fz_take(in, 2);
	if (!fz_started)
		return;
	uint8_t *p = fz_guest(fz_vq.desc_gpa + 16ull * (i % fz_vq.size), 16);
	if (p)
		memcpy(p, &d, sizeof(d));
}

/* Guest side: offer head h (append to the avail ring) and bump avail->idx by
 * `bump` (usually 1; large values are the "idx jumps ahead" case). */
static void fz_offer(struct fz_in *in)
{
	uint16_t h = (uint16_t)fz_take(in, 2);
	uint16_t bump = (uint16_t)fz_take(in, 1);
	if (!fz_started)
		return;
	uint8_t *a = fz_guest(fz_vq.avail_gpa, 4 + 2ull * fz_vq.size);
	if (!a)
		return;
	uint16_t idx;
	memcpy(&idx, a + 2, 2);
	memcpy(a + 4 + 2 * (idx % fz_vq.size), &h, 2);
	idx = (uint16_t)(idx + (bump ? bump : 1));
	memcpy(a + 2, &idx, 2);
}

static void fz_iov_copy(struct fz_in *in)
{
	uint64_t off = fz_take(in, 2), len = fz_take(in, 2);
	bool to_iov = fz_take(in, 1) & 1;
	if (!fz_elem_valid)
		return;
	static uint8_t buf[65536];
	if (to_iov) {
		uint64_t n = vq_buf_to_iov(fz_elem.in, fz_elem.n_in, off, buf, len);
		assert(n <= len && (off >= fz_elem.in_len || n == (len < fz_elem.in_len - off ? len : fz_elem.in_len - off)));
	} else {
		uint64_t n = vq_iov_to_buf(fz_elem.out, fz_elem.n_out, off, buf, len);
		assert(n <= len && (off >= fz_elem.out_len || n == (len < fz_elem.out_len - off ? len : fz_elem.out_len - off)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!fz_map)
		fz_ram_init();
	if (fz_debug < 0)
		fz_debug = getenv("FUZZ_DEBUG") != NULL;
	struct fz_in in = { data, size };
	fz_ram_reset(fz_take(&in, 1) & 1);
	memset(&fz_vq, 0, sizeof(fz_vq));
	fz_start(&in);
	unsigned ops = 0;
	while (in.n && ops++ < 4096) {
		uint8_t op = (uint8_t)fz_take(&in, 1);
		switch ((op & 0x7f) % 10) {
		case 0:
			if (fz_started)
				fz_pop();
			break;
		case 1:
			if (fz_started)
				fz_push(&in);
			else
				fz_take(&in, 4);
			break;
		case 2:
			fz_poke(&in);
			break;
		case 3:
			fz_put_desc(&in);
			break;
		case 4:
			fz_offer(&in);
			break;
		case 5:
			if (fz_started)
				(void)vq_need_interrupt(&fz_vq);
			break;
		case 6:
			if (fz_started)
				vq_enable_notify(&fz_vq, op & 0x80);
			break;
		case 7:
			fz_start(&in);
			break;
		case 8:
			fz_iov_copy(&in);
			break;
		case 9:
			/* drain: pop until empty or broken, pushing each */
			for (unsigned i = 0; fz_started && i < 2 * VQ_MAX_SIZE; i++) {
				fz_pop();
				if (!fz_elem_valid)
					break;
				struct fz_in none = { NULL, 0 };
				fz_push(&none);
			}
			break;
		}
	}
	return 0;
}
