/* mm: physical pages (from the multiboot memory map) and 4-level page tables. */
#ifndef GUEST_MM_H
#define GUEST_MM_H

#include <stdbool.h>
#include <stdint.h>

#define PAGE_SIZE 4096ull
#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_U 0x4ull
#define PTE_PWT 0x8ull
#define PTE_PCD 0x10ull
#define PTE_PS 0x80ull
#define PTE_NX (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull

/* Adds [base, base+len) as free RAM (clipped to the identity map, above the image). */
void mm_add_ram(uint64_t base, uint64_t len);
/* A zeroed page (physical = virtual), or 0 when none is left. */
uint64_t mm_alloc_page(void);
void mm_free_page(uint64_t pa);
/* `bytes` (rounded up to pages) of physically contiguous RAM, not zeroed, never
 * freed; 0 when no range has that much left. For DMA (SYS_DMA). */
uint64_t mm_alloc_contig(uint64_t bytes);
uint64_t mm_free_bytes(void);
/* Marks the image's user sections user-accessible (and .udata NX). */
void mm_init_user(void);
/* Maps one 4 KiB page in the user GiB; flags from PTE_*; NX is dropped when the CPU lacks it. */
bool mm_map_user(uint64_t va, uint64_t pa, uint64_t flags);
/* The leaf PTE for va (0 if none). */
uint64_t mm_lookup(uint64_t va);
/* Unmaps a user page, returning the physical page (0 if none). */
uint64_t mm_unmap_user(uint64_t va);

#endif
