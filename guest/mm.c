/*
 * mm: a bump allocator over the free RAM ranges plus a free list of returned
 * pages. Setting it up walks only the memory-map entries, never the pages:
 * each ring-0 instruction costs ~0.5 us here.
 */
#include "mm.h"

#include "arch.h"
#include "cpu.h"
#include "layout.h"

extern uint64_t pml4[], pd_user[], pt_low[];
extern char __image_end[], __user_text_start[], __user_text_end[], __user_data_end[];

#define MM_MAX_RANGES 16
#define MM_IDENTITY_END 0x40000000ull /* RAM the allocator hands out lies in the 1st GiB */

static struct {
	uint64_t next, end;
} mm_ranges[MM_MAX_RANGES];

/* Pages the loader zeroed for us (they are .bss): handed out first, with no
 * zeroing at all. */
#define MM_ZERO_POOL_PAGES 128
static uint8_t mm_zero_pool[MM_ZERO_POOL_PAGES][PAGE_SIZE] __attribute__((aligned(4096)));
static unsigned mm_zero_next;
static unsigned mm_nranges, mm_cur;
static uint64_t mm_freelist;
static volatile int mm_lock;

static void mm_take(void)
{
	while (__atomic_exchange_n(&mm_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
}
static void mm_give(void) { __atomic_store_n(&mm_lock, 0, __ATOMIC_RELEASE); }

void mm_add_ram(uint64_t base, uint64_t len)
{
	uint64_t lo = (uint64_t)__image_end, end = base + len;
	if (lo < 0x200000)
		lo = 0x200000; /* the first 2 MiB hold the image and the loader's data */
	if (base < lo)
		base = lo;
	if (end > MM_IDENTITY_END)
		end = MM_IDENTITY_END;
	base = (base + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	end &= ~(PAGE_SIZE - 1);
	if (base >= end || mm_nranges == MM_MAX_RANGES)
		return;
	mm_ranges[mm_nranges].next = base;
	mm_ranges[mm_nranges].end = end;
	mm_nranges++;
}

static void mm_zero(uint64_t pa)
{
	/* One instruction for the whole page. */
	uint64_t n = PAGE_SIZE / 8;
	__asm__ volatile("rep stosq" : "+D"(pa), "+c"(n) : "a"(0ull) : "memory");
}

uint64_t mm_alloc_page(void)
{
	uint64_t pa = 0;
	mm_take();
	if (mm_zero_next < MM_ZERO_POOL_PAGES) {
		pa = (uint64_t)mm_zero_pool[mm_zero_next++];
		mm_give();
		return pa;
	}
	if (mm_freelist) {
		pa = mm_freelist;
		mm_freelist = *(uint64_t *)pa;
	} else {
		while (mm_cur < mm_nranges && mm_ranges[mm_cur].next >= mm_ranges[mm_cur].end)
			mm_cur++;
		if (mm_cur < mm_nranges) {
			pa = mm_ranges[mm_cur].next;
			mm_ranges[mm_cur].next += PAGE_SIZE;
		}
	}
	mm_give();
	if (pa)
		mm_zero(pa);
	return pa;
}

uint64_t mm_alloc_contig(uint64_t bytes)
{
	uint64_t pa = 0;
	bytes = (bytes + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
	mm_take();
	/* Straight from a range's bump pointer: contiguous, not zeroed (the
	 * ring-3 owner clears what it needs, natively). */
	for (unsigned i = mm_cur; i < mm_nranges; i++) {
		if (mm_ranges[i].end - mm_ranges[i].next >= bytes) {
			pa = mm_ranges[i].next;
			mm_ranges[i].next += bytes;
			break;
		}
	}
	mm_give();
	return pa;
}

void mm_free_page(uint64_t pa)
{
	mm_take();
	*(uint64_t *)pa = mm_freelist;
	mm_freelist = pa;
	mm_give();
}

uint64_t mm_free_bytes(void)
{
	uint64_t n = (MM_ZERO_POOL_PAGES - mm_zero_next) * PAGE_SIZE;
	for (unsigned i = 0; i < mm_nranges; i++)
		n += mm_ranges[i].end - mm_ranges[i].next;
	return n;
}

void mm_init_user(void)
{
	uint64_t nx = cpu_has_nx ? PTE_NX : 0;
	for (uint64_t a = (uint64_t)__user_text_start; a < (uint64_t)__user_text_end; a += PAGE_SIZE)
		pt_low[a >> 12] |= PTE_U;
	for (uint64_t a = (uint64_t)__user_text_end; a < (uint64_t)__user_data_end; a += PAGE_SIZE)
		pt_low[a >> 12] |= PTE_U | nx;
	write_cr3(read_cr3());
}

/* The PT for va in the user GiB, allocated on first use. */
static uint64_t *mm_user_pt(uint64_t va, bool create)
{
	uint64_t *pde = &pd_user[(va >> 21) & 511];
	if (!(*pde & PTE_P)) {
		if (!create)
			return 0;
		uint64_t pt = mm_alloc_page();
		if (!pt)
			return 0;
		*pde = pt | PTE_P | PTE_W | PTE_U;
	}
	return (uint64_t *)(*pde & PTE_ADDR);
}

static volatile int mm_map_lock; /* APs map their stacks while the BSP runs */

bool mm_map_user(uint64_t va, uint64_t pa, uint64_t flags)
{
	if (va < USER_BASE || va >= USER_BASE + (1ull << 30))
		return false;
	if (!cpu_has_nx)
		flags &= ~PTE_NX;
	while (__atomic_exchange_n(&mm_map_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
	uint64_t *pt = mm_user_pt(va, true);
	if (pt)
		pt[(va >> 12) & 511] = (pa & PTE_ADDR) | flags | PTE_P;
	__atomic_store_n(&mm_map_lock, 0, __ATOMIC_RELEASE);
	if (!pt)
		return false;
	invlpg(va);
	return true;
}

uint64_t mm_lookup(uint64_t va)
{
	if (va < USER_BASE || va >= USER_BASE + (1ull << 30))
		return 0;
	uint64_t *pt = mm_user_pt(va, false);
	return pt ? pt[(va >> 12) & 511] : 0;
}

uint64_t mm_unmap_user(uint64_t va)
{
	uint64_t pte = mm_lookup(va);
	if (!(pte & PTE_P))
		return 0;
	mm_user_pt(va, false)[(va >> 12) & 511] = 0;
	invlpg(va);
	return pte & PTE_ADDR;
}
