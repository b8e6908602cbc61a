/*
 * boot: image loaders and the x86 state a guest is entered with.
 *
 * A loader is pure logic: it reads an image from a byte buffer, writes it and
 * its boot structures into guest RAM (struct guest_mem, no KVM needed — so
 * the unit tests run anywhere), and fills a struct boot_entry describing the
 * CPU state the bootstrap processor starts in. boot_x86_apply() then turns
 * that into KVM_SET_SREGS/KVM_SET_REGS on a vCPU.
 *
 * Guest-physical layout of the boot structures (all below 640 KiB):
 *   0x00500  BOOT_GDT        GDT: 0x08 code32, 0x10 entry code (64-bit in long
 *                            mode, 32-bit in protected mode), 0x18 data, 0x20 code64
 *   0x01000  BOOT_STACK_TOP  initial RSP for ELF / multiboot entries (grows down)
 *   0x05000  BOOT_INFO       multiboot info, memory map, cmdline, module strings
 *                            (BOOT_INFO_SIZE bytes)
 *   0x09000  BOOT_PML4       identity-mapped page tables: PML4, PDPT, then one
 *                            page directory (2 MiB pages) per GiB mapped
 *   0x9f000  BOOT_MPTABLE    MP configuration table (up to BOOT_MPTABLE_FP; 3 KiB
 *                            holds BOOT_MPTABLE_MAX_CPUS processor entries)
 *   0x9fc00  BOOT_MPTABLE_FP MP floating pointer, in the last KiB of base memory
 *                            where the MP spec (and Linux) look for it
 *   0xa0000  BOOT_MPTABLE_END
 *   0x10000  flat binaries (real mode, CS=DS=ES=FS=GS=0x1000 IP=0, SS=0 SP=0x8000)
 *            — they must end at or below BOOT_MPTABLE
 * and in the BIOS area [0xe0000, 0x100000), which hvmm has no firmware in and
 * the memory map reports reserved:
 *   0xe0000  BOOT_ACPI_RSDP  ACPI RSDP (rev 2, 36 bytes): the first 16-byte
 *                            boundary of the range OSes scan for "RSD PTR "
 *   0xe0040  BOOT_ACPI_RSDT  RSDT (32-bit pointers to FADT, MADT)
 *   0xe0080  BOOT_ACPI_XSDT  XSDT (64-bit pointers to the same)
 *   0xe0100  BOOT_ACPI_FADT  FADT rev 6 (276 bytes): PM1a blocks, PM timer, SCI 9
 *   0xe0240  BOOT_ACPI_FACS  FACS (64 bytes, 64-byte aligned)
 *   0xe0400  BOOT_ACPI_DSDT  DSDT (room to 0xe1000 for AML to come)
 *   0xe1000  BOOT_ACPI_MADT  MADT, up to BOOT_ACPI_END
 *   0xf0000  BOOT_ACPI_END   the upper 64 KiB stays free for other firmware tables
 *   0xf0000  BOOT_IVT_CODE   the real-mode interrupt handlers the IVT at 0 points
 *                            at (multiboot, ELF, flat: boot_ivt_write)
 * Anything an image wants to place over [BOOT_RESERVED_START, BOOT_RESERVED_END)
 * or [BOOT_MPTABLE, BOOT_MPTABLE_END) is refused with an error, as is anything
 * outside RAM. A multiboot kernel, which needs no page tables, may load
 * anywhere from BOOT_MB_RESERVED_END (0x1000) up: when it wants BOOT_INFO, its
 * info area goes page-aligned after the image instead (EBX says where). The multiboot memory map marks [BOOT_MPTABLE, 0xa0000) reserved
 * (so mem_lower is 636 KiB, not the classic 639).
 */
#ifndef HVMM_BOOT_H
#define HVMM_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../memory.h"

#define BOOT_GDT 0x500ull
#define BOOT_STACK_TOP 0x1000ull
#define BOOT_INFO 0x5000ull
#define BOOT_INFO_SIZE 0x4000ull
#define BOOT_PML4 0x9000ull
/* page directories for up to 65 GiB identity map: MEM_MAX_SIZE of RAM, 1 GiB of
 * which sits above the 3–4 GiB hole */
#define BOOT_PT_MAX_GIB 65
/* The MP table outgrew the last KiB of base memory (64 CPUs need ~1.5 KiB), so
 * the config table lives below the floating pointer, in the KiBs just under it. */
#define BOOT_MPTABLE 0x9f000ull
#define BOOT_MPTABLE_SIZE 0x1000ull
#define BOOT_MPTABLE_FP 0x9fc00ull
/* (3 KiB - 44 header - 8 bus - 8 IOAPIC - 16*8 I/O int - 2*8 local int) / 20 */
#define BOOT_MPTABLE_MAX_CPUS 143
#define BOOT_FLAT_ADDR 0x10000ull
#define BOOT_RESERVED_START 0x0ull
/* page tables end at BOOT_PML4 + (2 + BOOT_PT_MAX_GIB) pages = 0x4c000 */
#define BOOT_RESERVED_END 0x4c000ull
#define BOOT_MPTABLE_END (BOOT_MPTABLE + BOOT_MPTABLE_SIZE)
/* A multiboot kernel (entered in protected mode, paging off) needs only the
 * GDT and the boot stack below 0x1000: its info area moves out of the way of
 * an image that loads over BOOT_INFO (boot_load_multiboot). */
#define BOOT_MB_RESERVED_END 0x1000ull

/* ACPI tables (boot_acpi_write). Fixed slots rather than packed back to back,
 * so a table growing (AML in the DSDT, more MADT entries) never moves another. */
#define BOOT_ACPI_RSDP 0xe0000ull
#define BOOT_ACPI_RSDT 0xe0040ull
#define BOOT_ACPI_XSDT 0xe0080ull
#define BOOT_ACPI_FADT 0xe0100ull
#define BOOT_ACPI_FACS 0xe0240ull
#define BOOT_ACPI_DSDT 0xe0400ull
#define BOOT_ACPI_MADT 0xe1000ull
#define BOOT_ACPI_MCFG 0xe2000ull
#define BOOT_ACPI_DMAR 0xe3000ull
#define BOOT_ACPI_END 0xf0000ull

/* The real-mode IVT (boot_ivt_write) and its handlers, at F000:0000. */
#define BOOT_IVT 0x0ull
#define BOOT_IVT_VECTORS 256
#define BOOT_IVT_CODE 0xf0000ull
#define BOOT_IVT_CODE_SIZE 0x40u
#define BOOT_IVT_IRET_OFF 0x00u   /* IRET */
#define BOOT_IVT_MASTER_OFF 0x10u /* EOI the master 8259, IRET */
#define BOOT_IVT_SLAVE_OFF 0x20u  /* EOI the slave and the master, IRET */
#define BOOT_IVT_MASTER_BASE 0x08 /* the 8259 bases a PC BIOS programs */
#define BOOT_IVT_SLAVE_BASE 0x70
/* APIC IDs 0..ncpus-1 and the IOAPIC's ID ncpus must fit the MADT's 8-bit
 * xAPIC IDs, and 0xff is the broadcast ID: ncpus <= 254. More would need
 * x2APIC entries (type 9). Space is not the limit: 254 CPUs take ~2 KiB of the
 * MADT's 60 KiB. */
#define BOOT_ACPI_MAX_CPUS 254

enum boot_format {
	BOOT_AUTO = 0,
	BOOT_FLAT,
	BOOT_ELF,
	BOOT_MULTIBOOT,
	BOOT_LINUX, /* bzImage (detected by its setup header) or vmlinux (--boot linux) */
	BOOT_PVH,   /* ELF with a XEN_ELFNOTE_PHYS32_ENTRY note (src/boot/pvh.c) */
};

enum boot_mode {
	BOOT_MODE_REAL16,   /* real mode, CS:IP = cs_sel:rip */
	BOOT_MODE_PROT32,   /* flat 32-bit protected mode, paging off */
	BOOT_MODE_LONG64,   /* long mode, identity-mapped 4-level paging */
};

struct boot_module {
	const char *path;
	const char *args; /* may be NULL */
};

struct boot_params_in {
	const uint8_t *image;
	size_t image_len;
	const char *image_path; /* for messages */
	const char *cmdline;    /* may be NULL */
	const struct boot_module *modules;
	int nr_modules;
	int ncpus;
	enum boot_format format; /* BOOT_AUTO: detect */
	const uint8_t *initrd;   /* Linux only; NULL: none */
	size_t initrd_len;
	bool no_decompress;      /* Linux: boot a bzImage through its own decompressor */
	uint64_t acpi_rsdp;      /* PVH: hvm_start_info.rsdp_paddr (BOOT_ACPI_RSDP with ACPI, else 0) */
};

struct boot_entry {
	enum boot_format format; /* what was actually loaded */
	enum boot_mode mode;
	uint64_t rip, rsp;
	uint64_t rax, rbx, rsi; /* e.g. multiboot: EAX magic, EBX info */
	uint16_t cs_sel;        /* real mode: CS selector (base = sel << 4) */
	uint64_t cr3;           /* long mode: PML4 address */
	uint64_t image_lo, image_hi; /* guest-physical extent of what was loaded */
};

/*
 * Detect the format of an image: bzImage, then multiboot (header in the first
 * 8 KiB), then PVH (ELF with a PHYS32_ENTRY note), then ELF (by magic), else
 * flat. Returns BOOT_AUTO for an empty image.
 */
enum boot_format boot_detect(const uint8_t *image, size_t len);
const char *boot_format_name(enum boot_format f);
/* "auto|flat|elf|multiboot|linux|pvh" → format; -1 if unknown. */
int boot_format_parse(const char *s, enum boot_format *out);

/*
 * Load an image (and modules) into guest RAM and describe the entry state.
 * On error returns -1 and writes a one-line reason (no "hvmm:" prefix, no
 * newline) into err.
 */
int boot_load(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
	      char *err, size_t errlen);

/* Individual loaders (boot_load dispatches to these). Same error contract. */
int boot_load_flat(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
		   char *err, size_t errlen);
int boot_load_elf(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
		  char *err, size_t errlen);
int boot_load_multiboot(struct guest_mem *m, const struct boot_params_in *in,
			struct boot_entry *out, char *err, size_t errlen);

/*
 * PVH (Xen's HVM direct boot, arch/x86 hvm/start_info.h): an ELF32/ELF64 with a
 * PT_NOTE note named "Xen" of type 18 (XEN_ELFNOTE_PHYS32_ENTRY) whose 4-byte
 * desc is the 32-bit physical entry. PT_LOADs go to p_paddr; the CPU starts in
 * flat 32-bit protected mode, paging off (BOOT_MODE_PROT32), at that entry with
 * EBX = the struct hvm_start_info (magic 0x336ec578, version 1) at BOOT_INFO,
 * followed in the BOOT_INFO area by the memory map (same ranges as the Linux
 * e820), the command line (in->cmdline; cmdline_paddr 0 without one), the
 * module list and module command lines (in->args). Modules go page-aligned
 * after the image, as multiboot's. rsdp_paddr is in->acpi_rsdp.
 * Every note header, name and desc is checked against its segment and the
 * file; a malformed note or a desc that is not 4 bytes is an error.
 * boot_is_pvh: the image is an ELF whose notes are well formed up to a
 * PHYS32_ENTRY note of any desc size (so boot_load reports a bad one);
 * boot_detect picks BOOT_PVH for it only after bzImage and multiboot.
 */
int boot_load_pvh(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
		  char *err, size_t errlen);
bool boot_is_pvh(const uint8_t *image, size_t len);

/*
 * Linux x86 boot protocol (Documentation/x86/boot.rst), 64-bit entry.
 *
 * kernel is a bzImage (boot_flag 0xAA55 and "HdrS" at 0x1fe/0x202, protocol
 * >= 2.12, XLF_KERNEL_64) or an uncompressed ELF64 vmlinux; the caller picks
 * this loader (--boot linux), the loader tells the two apart by the ELF magic.
 * A bzImage's protected-mode kernel goes to its pref_address, a vmlinux's
 * PT_LOADs to their p_paddr. The CPU starts in long mode (BOOT_MODE_LONG64,
 * CS 0x10 = __BOOT_CS, DS 0x18 = __BOOT_DS) at the 64-bit entry
 * (bzImage: load address + 0x200; vmlinux: e_entry made physical) with
 * RSI = BOOT_LINUX_PARAMS.
 *
 * The zero page and command line reuse the multiboot info area: the two
 * protocols never load together.
 *   BOOT_LINUX_PARAMS   struct boot_params (4 KiB): the image's setup header,
 *                       type_of_loader 0xff, cmd_line_ptr, ramdisk_*, e820
 *   BOOT_LINUX_CMDLINE  NUL-terminated command line, at most the header's
 *                       cmdline_size bytes and BOOT_LINUX_CMDLINE_MAX - 1
 * The initrd goes page-aligned as high as it can below initrd_addr_max
 * (vmlinux: BOOT_LINUX_INITRD_MAX) and the end of RAM below the 3 GiB hole,
 * above the kernel (bzImage: its init_size, which covers decompression).
 * out->format is BOOT_AUTO: enum boot_format has no Linux value yet.
 */
#define BOOT_LINUX_PARAMS BOOT_INFO
#define BOOT_LINUX_CMDLINE (BOOT_INFO + 0x1000ull)
#define BOOT_LINUX_CMDLINE_MAX (BOOT_INFO_SIZE - 0x1000ull)
/* initrd_addr_max a 64-bit kernel's header gives (and the default for a vmlinux) */
#define BOOT_LINUX_INITRD_MAX 0x7fffffffull
/* where the 64-bit entry sits in the protected-mode kernel of a bzImage */
#define BOOT_LINUX_ENTRY64_OFF 0x200ull

struct boot_elf_info;
struct boot_linux_in {
	const uint8_t *kernel;
	size_t kernel_len;
	const uint8_t *initrd; /* may be NULL (initrd_len 0) */
	size_t initrd_len;
	const char *cmdline;   /* may be NULL: empty */
	/* Set when the vmlinux's segments are already in RAM (streamed from the
	 * decompressor, src/boot/kernel.c): kernel then holds only its first
	 * bytes, headers included, for the entry point. */
	const struct boot_elf_info *elf_loaded;
};

/* boot_load()'s Linux path: a bzImage's payload is decompressed on the host
 * (unless in->no_decompress) and the vmlinux inside is booted; src/boot/kernel.c. */
int boot_load_kernel(struct guest_mem *m, const struct boot_params_in *in, struct boot_entry *out,
		     char *err, size_t errlen);
/* bzImage: boot flag 0xAA55 at 0x1fe and "HdrS" at 0x202. */
bool boot_is_bzimage(const uint8_t *image, size_t len);

int boot_load_linux(struct guest_mem *m, const struct boot_linux_in *in, struct boot_entry *out,
		    char *err, size_t errlen);

/* Write the boot GDT and (for long mode) identity page tables covering RAM,
 * the 3–4 GiB MMIO hole and the boot structures. Used by the loaders. */
/*
 * The firmware-less guest's real-mode IVT: all 256 vectors at BOOT_IVT point
 * into BOOT_IVT_CODE — the 8259's (bases BOOT_IVT_MASTER_BASE and
 * BOOT_IVT_SLAVE_BASE) at stubs that EOI it and IRET, the rest at an IRET.
 * 0, or -1 if RAM does not hold both (a guest smaller than 1 MiB).
 */
int boot_ivt_write(struct guest_mem *m);
void boot_x86_write_gdt(struct guest_mem *m, enum boot_mode mode);
int boot_x86_write_page_tables(struct guest_mem *m, uint64_t *cr3);

/* Set a vCPU's sregs/regs for the entry state. 0 or -errno. */
int boot_x86_apply(int vcpufd, const struct boot_entry *e);

/*
 * MP table (Intel MP spec 1.4): floating pointer at BOOT_MPTABLE_FP, config
 * table at BOOT_MPTABLE with one processor entry per CPU (APIC IDs 0..ncpus-1, CPU 0 is the
 * BSP), a bus entry "ISA   ", the IOAPIC (id ncpus, at ioapic_addr), 16 ISA
 * I/O interrupt entries (IRQ n → IOAPIC pin n, except IRQ 0 → pin 2), and
 * local interrupt entries (ExtINT → LINT0, NMI → LINT1). Checksummed.
 * -1 when it does not fit (ncpus outside 1..BOOT_MPTABLE_MAX_CPUS) or
 * ioapic_addr is not a 32-bit address.
 */
int boot_mptable_write(struct guest_mem *m, int ncpus, uint64_t ioapic_addr);

/*
 * ACPI tables for a machine with ncpus CPUs and one IOAPIC at ioapic_addr:
 * RSDP (rev 2) at BOOT_ACPI_RSDP, RSDT and XSDT each listing FADT and MADT,
 * a FADT (reset register: I/O port 0xcf9, value 0x06; the PM1a event and
 * control blocks and the PM timer of devices.h's ACPI_PM_*, SCI on IRQ 9) with
 * a FACS at BOOT_ACPI_FACS, pointing at a DSDT holding `Scope (\_SB) {}`, and
 * a MADT with the same interrupt wiring as the MP table: one Local APIC per CPU
 * (APIC IDs and processor UIDs 0..ncpus-1), the IOAPIC (ID ncpus, GSI base 0),
 * the overrides ISA IRQ 0 -> GSI 2 and IRQ 9 (the SCI) level/active high,
 * and NMI on LINT1 of every CPU; with
 * ecam_base != 0 also an MCFG (listed third) giving that ECAM window for PCI
 * segment 0, buses 0-0 (the e820 maps must reserve it: Linux checks), and
 * the DSDT then describes the host bridge \_SB.PCI0 (PNP0A08, _CRS with bus
 * 0, the I/O ports and pci.h's BAR window, _PRT with pci.h's INTx swizzle).
 * With dmar && dmar->base, a DMAR table (listed last) describes a VT-d unit.
 * All checksummed. Writes only [BOOT_ACPI_RSDP, BOOT_ACPI_END) (zeroing the rest
 * of it), and needs RAM up to 1 MiB, the end of the range an OS scans for the
 * RSDP (1 MiB of RAM is enough). 0, or -1 with a one-line reason in err
 * (ncpus outside 1..BOOT_ACPI_MAX_CPUS, ioapic_addr not 32-bit, RAM too small).
 */
struct boot_acpi_dmar;
int boot_acpi_write(struct guest_mem *m, int ncpus, uint64_t ioapic_addr, uint64_t ecam_base,
		    const struct boot_acpi_dmar *dmar, char *err, size_t errlen);
/* A VT-d unit for the DMAR table (base 0: none): one DRHD covering every PCI
 * device, with the IOAPIC (ID ncpus) under it as requester ioapic_sid. */
struct boot_acpi_dmar {
	uint64_t base;
	bool intremap;       /* DMAR flags: INTR_REMAP */
	unsigned haw;        /* host address width, bits */
	uint16_t ioapic_sid;
};

/*
 * Host-side decompression of a bzImage's payload (src/boot/decompress.c).
 *
 * boot_bzimage_payload: find the payload (the compressed vmlinux) through the
 * setup header: boot_flag 0xAA55, "HdrS", protocol >= 2.08; it starts at
 * (setup_sects + 1) * 512 + payload_offset (0x248) and is payload_length
 * (0x24c) bytes, all inside the image. 0, or -1 with a reason in err.
 *
 * boot_comp_detect: the compression by its magic (BOOT_COMP_NONE if none).
 *
 * boot_decompress: gzip, xz, zstd and the kernel's legacy lz4 frame into a
 * malloc'd buffer (*out, *out_len; the caller frees) of at most max_out bytes,
 * and never more than BOOT_DECOMPRESS_MAX whatever max_out says.
 * Trailing bytes after a complete stream (the size the kernel's build appends)
 * are ignored; lz4's legacy frame has no end marker, so there only exactly 4
 * trailing bytes are. The last 4 bytes only hint at the first allocation.
 * bzip2, lzma and lzo are refused ("boot with --no-decompress"),
 * as are corrupt or truncated streams and output over max_out: -1 with a
 * reason in err, *out NULL.
 */
/* A decompressed kernel larger than this is refused: a stripped vmlinux is
 * tens of MiB (Debian's: 63 MiB), and without a bound a small crafted image
 * could make hvmm allocate as much heap as the guest has RAM (up to 64 GiB). */
#define BOOT_DECOMPRESS_MAX (512ull << 20)

enum boot_comp {
	BOOT_COMP_NONE = 0,
	BOOT_COMP_GZIP,
	BOOT_COMP_BZIP2,
	BOOT_COMP_LZMA,
	BOOT_COMP_XZ,
	BOOT_COMP_LZO,
	BOOT_COMP_LZ4,
	BOOT_COMP_ZSTD,
};

enum boot_comp boot_comp_detect(const uint8_t *p, size_t len);
const char *boot_comp_name(enum boot_comp c);
int boot_decompress(const uint8_t *in, size_t in_len, size_t max_out, uint8_t **out,
		    size_t *out_len, char *err, size_t errlen);
/*
 * boot_decompress_to: the same decoders and limits, the output handed to
 * sink->write in order, chunk by chunk (at most 8 MiB at a time, through one
 * reused window), instead of collected: *out_len is the total. A write
 * returning < 0 stops decoding and is returned as it is (err is the sink's).
 */
struct boot_sink {
	int (*write)(void *ctx, uint64_t off, const uint8_t *p, size_t n, char *err, size_t errlen);
	void *ctx;
};
int boot_decompress_to(const uint8_t *in, size_t in_len, size_t max_out, const struct boot_sink *sink,
		       uint64_t *out_len, char *err, size_t errlen);
int boot_bzimage_payload(const uint8_t *img, size_t len, const uint8_t **payload, size_t *plen,
			 char *err, size_t errlen);

#endif
