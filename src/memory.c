#include "memory.h"

#include <errno.h>
#include <stdlib.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "util.h"

int mem_init(struct guest_mem *m, uint64_t ram_size)
{
	memset(m, 0, sizeof(*m));
	if (ram_size < MEM_MIN_SIZE || ram_size > MEM_MAX_SIZE || (ram_size & 0xfff))
		return -EINVAL;
	/* MAP_NORESERVE: untouched guest pages cost nothing, so a 2G guest that
	 * uses 10M has a 10M footprint. */
	/* 2 MiB-aligned (over-map, trim) so guest 2 MiB frames are host 2 MiB
	 * frames: transparent huge pages can back them. */
	uint64_t slack = MEM_HUGE_SIZE;
	uint8_t *p = mmap(NULL, ram_size + slack, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	uint8_t *base = (uint8_t *)(((uintptr_t)p + slack - 1) & ~(uintptr_t)(slack - 1));
	if (base > p)
		munmap(p, (size_t)(base - p));
	if (base + ram_size < p + ram_size + slack)
		munmap(base + ram_size, (size_t)(p + ram_size + slack - (base + ram_size)));
	/* Huge pages above the first 2 MiB (this host runs THP in madvise mode;
	 * QEMU asks for it too): device DMA — virtio-blk copying 1 MiB blocks
	 * into guest buffers — then takes far fewer TLB misses (sequential
	 * 1 MiB reads 22 -> 28 GB/s together with inline reads, see
	 * virtio_blk.c). The first 2 MiB (boot structures, page tables, a small
	 * guest's whole image) stay 4 KiB pages, so a tiny guest's footprint
	 * stays ~1 MiB. Advice only: failure changes speed, nothing else. */
	if (ram_size > 2 * MEM_HUGE_SIZE)
		madvise(base + MEM_HUGE_SIZE, ram_size - MEM_HUGE_SIZE, MADV_HUGEPAGE);
	m->base = base;
	m->ram_size = ram_size;
	uint64_t low = ram_size < MEM_HOLE_START ? ram_size : MEM_HOLE_START;
	m->regions[0] = (struct mem_region){ .gpa = 0, .size = low, .hva = m->base };
	m->nr_regions = 1;
	if (ram_size > low) {
		m->regions[1] = (struct mem_region){
			.gpa = MEM_HOLE_END, .size = ram_size - low, .hva = m->base + low
		};
		m->nr_regions = 2;
	}
	return 0;
}

void mem_free(struct guest_mem *m)
{
	if (m->base)
		munmap(m->base, m->ram_size);
	free((void *)m->dma_dirty);
	memset(m, 0, sizeof(*m));
}

int mem_register_slots(const struct guest_mem *m, int vmfd, uint32_t flags)
{
	for (int i = 0; i < m->nr_regions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = (uint32_t)i,
			.flags = flags,
			.guest_phys_addr = m->regions[i].gpa,
			.memory_size = m->regions[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)m->regions[i].hva,
		};
		if (ioctl(vmfd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return -errno;
	}
	return 0;
}

void *mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (int i = 0; i < m->nr_regions; i++) {
		const struct mem_region *r = &m->regions[i];
		if (gpa >= r->gpa && util_range_ok(gpa - r->gpa, len, r->size))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len)
{
	void *p = mem_ptr(m, gpa, len);
	if (!p)
		return -1;
	memcpy(dst, p, len);
	return 0;
}

int mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = mem_ptr(m, gpa, len);
	if (!p)
		return -1;
	memcpy(p, src, len);
	mem_mark_dirty(m, p, len);
	return 0;
}

void mem_mark_dirty(const struct guest_mem *m, const void *hva, uint64_t len)
{
	if (!atomic_load_explicit(&m->dma_track, memory_order_acquire) || !len)
		return;
	const uint8_t *p = hva;
	if (p < m->base || p >= m->base + m->ram_size)
		return; /* not guest RAM (a bounce buffer) */
	uint64_t first = (uint64_t)(p - m->base) / 4096;
	uint64_t end = (uint64_t)(p - m->base) + len;
	if (end > m->ram_size)
		end = m->ram_size;
	uint64_t last = (end - 1) / 4096;
	for (uint64_t pg = first; pg <= last; pg++)
		atomic_fetch_or_explicit(&m->dma_dirty[pg / 64], 1ull << (pg % 64), memory_order_release);
}

int mem_dma_track_start(struct guest_mem *m)
{
	size_t words = (size_t)((m->ram_size / 4096 + 63) / 64);
	if (!m->dma_dirty && !(m->dma_dirty = calloc(words, sizeof(uint64_t))))
		return -ENOMEM;
	for (size_t i = 0; i < words; i++)
		atomic_store(&m->dma_dirty[i], 0);
	atomic_store_explicit(&m->dma_track, true, memory_order_release);
	return 0;
}

void mem_dma_track_stop(struct guest_mem *m)
{
	atomic_store(&m->dma_track, false);
}

void mem_dma_take(struct guest_mem *m, uint64_t *out, size_t nwords)
{
	if (!m->dma_dirty)
		return;
	for (size_t i = 0; i < nwords; i++)
		out[i] |= atomic_exchange_explicit(&m->dma_dirty[i], 0, memory_order_acquire);
}

uint64_t mem_top(const struct guest_mem *m)
{
	const struct mem_region *r = &m->regions[m->nr_regions - 1];
	return r->gpa + r->size;
}
