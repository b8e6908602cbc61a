/*
 * main: from the multiboot hand-off to the tests. Reads the command line and
 * the memory map before anything can overwrite them, sets up this CPU, then
 * runs the test named by test=.
 */
#include <stdint.h>

#include "apic.h"
#include "arch.h"
#include "boot.h"
#include "clock.h"
#include "console.h"
#include "cpu.h"
#include "layout.h"
#include "mm.h"
#include "task.h"
#include "tests.h"

#define MB_BOOT_MAGIC 0x2BADB002
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP (1u << 6)

struct boot_options boot_opts = { .test = "all", .syscall = "auto" };
static char boot_cmdline[256];

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct mb_mmap {
	uint32_t size;
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

static int str_prefix(const char *s, const char *p)
{
	while (*p)
		if (*s++ != *p++)
			return 0;
	return 1;
}

/* Splits the copied command line in place into key=value words. */
static void boot_parse_cmdline(void)
{
	char *s = boot_cmdline;
	while (*s) {
		while (*s == ' ')
			s++;
		char *w = s;
		while (*s && *s != ' ')
			s++;
		if (*s)
			*s++ = 0;
		if (str_prefix(w, "test="))
			boot_opts.test = w + 5;
		else if (str_prefix(w, "syscall="))
			boot_opts.syscall = w + 8;
		else if (str_prefix(w, "apic=xapic"))
			boot_opts.no_x2apic = true;
		else if (str_prefix(w, "iters=")) {
			uint64_t n = 0;
			for (const char *d = w + 6; *d >= '0' && *d <= '9'; d++)
				n = n * 10 + (uint64_t)(*d - '0');
			if (n)
				boot_opts.iters = n;
		} else if (*w && boot_opts.nextra < sizeof(boot_opts.extra) / sizeof(boot_opts.extra[0])) {
			boot_opts.extra[boot_opts.nextra++] = w;
		}
	}
}

/* What the memory map offered (the allocator manages only part of it); printed
 * at boot so a test can check the VMM's map, RAM above 4 GiB included. */
static uint64_t boot_ram_bytes, boot_ram_high_bytes;

static void boot_read_info(uint32_t magic, uint32_t info)
{
	if (magic != MB_BOOT_MAGIC)
		panic("not booted by a multiboot loader (eax=0x%x)", magic);
	const struct mb_info *mb = (const struct mb_info *)(uint64_t)info;
	if ((mb->flags & MB_INFO_CMDLINE) && mb->cmdline) {
		const char *c = (const char *)(uint64_t)mb->cmdline;
		unsigned i = 0;
		for (; c[i] && i < sizeof(boot_cmdline) - 1; i++)
			boot_cmdline[i] = c[i];
		boot_cmdline[i] = 0;
	}
	if (mb->flags & MB_INFO_MMAP) {
		uint64_t p = mb->mmap_addr, end = p + mb->mmap_length;
		while (p < end) {
			const struct mb_mmap *e = (const struct mb_mmap *)p;
			if (e->type == 1) {
				mm_add_ram(e->addr, e->len);
				boot_ram_bytes += e->len;
				if (e->addr >= 0x100000000ull)
					boot_ram_high_bytes += e->len;
			}
			p += e->size + 4;
		}
	} else {
		/* mem_upper: KiB above 1 MiB */
		mm_add_ram(0x100000, (uint64_t)mb->mem_upper << 10);
	}
}

void kmain(uint32_t magic, uint32_t info)
{
	outl(BOOT_MARKER_PORT, BOOT_MARK_KERNEL); /* hvmm's boot timer; QEMU ignores it */
	/* Firmware (SeaBIOS, or hvmm's BIOS-like state for images it loads)
	 * leaves the 8259 on vectors 8-15 with the PIT's IRQ 0 unmasked, and the
	 * boot CPU's LINT0 in virtual-wire mode: the first tick after an `sti`
	 * (ring 3 runs with IF=1) would arrive as vector 8, a #DF. Mask both
	 * 8259s first, as any OS does; apic_init also masks LINT0 where the
	 * LAPIC is used. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	console_init();
	cpu_init(0);
	boot_read_info(magic, info);
	kprintf("hvmm-guest: cmdline \"%s\"\n", boot_cmdline);
	boot_parse_cmdline();
	mm_init_user();
	task_init();
	kprintf("hvmm-guest: %lu MiB RAM in the memory map (%lu MiB above 4 GiB), %lu MiB free, NX %s\n",
		boot_ram_bytes >> 20, boot_ram_high_bytes >> 20, mm_free_bytes() >> 20,
		cpu_has_nx ? "on" : "absent");
	tests_main();
}
