/*
 * memory: guest RAM. One anonymous mapping, split into KVM memory slots around
 * the 32-bit PCI hole, and the one place that turns a guest-physical address
 * into a host pointer. Every guest-supplied address goes through mem_ptr(),
 * which refuses anything not wholly inside RAM — that is what keeps a hostile
 * guest from making hvmm touch host memory outside the guest.
 */
#ifndef HVMM_MEMORY_H
#define HVMM_MEMORY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RAM below 4 GiB stops here; [MEM_HOLE_START, 4 GiB) is for MMIO (LAPIC, IOAPIC, PCI BARs). */
#define MEM_HOLE_START 0xC0000000ull
#define MEM_HOLE_END 0x100000000ull
#define MEM_MIN_SIZE (1ull << 20)
#define MEM_HUGE_SIZE (2ull << 20) /* RAM is mapped 2 MiB-aligned, huge pages above the first */
#define MEM_MAX_SIZE (64ull << 30)

struct mem_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *hva;
};

struct guest_mem {
	uint8_t *base;      /* the one mapping, ram_size bytes */
	uint64_t ram_size;
	int nr_regions;     /* 1 (RAM fits below the hole) or 2 */
	struct mem_region regions[2];
	/*
	 * A live migration's record of the pages hvmm itself wrote (device DMA),
	 * which KVM's dirty log never sees: one bit per page of the mapping,
	 * set by mem_mark_dirty while dma_track is on. Allocated at the first
	 * migration and kept until mem_free, so a device marking while tracking
	 * is switched off never writes into freed memory.
	 */
	_Atomic uint64_t *dma_dirty;
	atomic_bool dma_track;
};

/* Map ram_size bytes and lay them out around the hole. 0 or -errno. */
int mem_init(struct guest_mem *m, uint64_t ram_size);
void mem_free(struct guest_mem *m);
/* Register every region as a KVM user memory slot on vmfd. 0 or -errno. */
int mem_register_slots(const struct guest_mem *m, int vmfd, uint32_t flags);

/* Host pointer for [gpa, gpa+len) if that range lies wholly inside one RAM region, else NULL. */
void *mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);
/* Checked copies; 0, or -1 when any byte of the range is outside RAM. */
int mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len);
int mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len);
/* A device wrote [hva, hva+len) of guest RAM (after the write): remembered
 * for a migration in progress, nothing otherwise. Any thread. */
void mem_mark_dirty(const struct guest_mem *m, const void *hva, uint64_t len);
/* Migration: start recording (0 or -ENOMEM), stop. */
int mem_dma_track_start(struct guest_mem *m);
void mem_dma_track_stop(struct guest_mem *m);
/* Move the recorded bits of words [w, w+nw) into out (ORed), clearing them. */
void mem_dma_take(struct guest_mem *m, uint64_t *out, size_t nwords);

/* Highest guest-physical address of RAM + 1 (above the hole when there is RAM there). */
uint64_t mem_top(const struct guest_mem *m);

#endif
