/* rawkvm: the lower bound for hvmm's benchmarks.
 *
 * The least a VMM must do to run a multiboot ELF32 bench guest: open /dev/kvm,
 * create a VM with one anonymous memory slot and one vCPU, copy the PT_LOAD
 * segments to p_paddr, enter flat 32-bit protected mode with EAX=0x2BADB002,
 * and loop on KVM_RUN. Port 0xf4 behaves like QEMU's isa-debug-exit (status
 * (v<<1)|1); every other port I/O exit is ignored (reads return all-ones).
 *
 * Deliberately absent, because each is a cost hvmm pays on purpose and the bench
 * wants to show it: no irqchip (hvmm creates a split or in-kernel one), no
 * CPUID set-up, no devices, no threads, no exit accounting, no multiboot info
 * (EBX=0: the bench guests read none).
 *
 * Usage: rawkvm [--mem SIZE] [--irqchip none|split|kernel] [--cpuid] [--thread] [--unshare-files] IMAGE
 *   --mem      guest RAM in bytes or with K/M/G (default 128M)
 *   --irqchip  off by default (the lower bound); split = KVM_CAP_SPLIT_IRQCHIP,
 *              kernel = KVM_CREATE_IRQCHIP + KVM_CREATE_PIT2, as hvmm does
 *   --cpuid    KVM_GET_SUPPORTED_CPUID + KVM_SET_CPUID2, as every real VMM does
 *   --thread   run the vCPU loop in a second thread while main waits, as hvmm does
 *   --unshare-files  --thread, and the vCPU thread takes a private fd table
 * The options exist only to split hvmm's start-up cost into what KVM itself
 * charges for each piece of set-up and what hvmm adds on top (docs/benchmarks.md).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEBUG_EXIT_PORT 0xf4
#define GDT_ADDR 0x500u  /* below the 1 MiB load address of the guests, above the IVT/BDA */
#define GDT_SIZE (3 * 8u)
#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_HDR_MAGIC 0x1BADB002u
#define MB_SEARCH 8192u  /* multiboot v1: header within the first 8 KiB */

static void die(const char *what)
{
	fprintf(stderr, "rawkvm: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void fail(const char *msg)
{
	fprintf(stderr, "rawkvm: %s\n", msg);
	exit(2);
}

static uint64_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s)
		fail("bad --mem size");
	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; end++; break;
	case '\0': break;
	default: fail("bad --mem size");
	}
	if (*end || v < (2u << 20) || v > (3ull << 30))
		fail("--mem must be 2M..3G (one slot below the PCI hole)");
	return v;
}

/* Read the whole image: the bench guests are a few KiB. */
static uint8_t *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die(path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		die("fstat");
	if (st.st_size <= 0 || st.st_size > (64 << 20))
		fail("image empty or larger than 64 MiB");
	*len = (size_t)st.st_size;
	uint8_t *buf = malloc(*len);
	if (!buf)
		fail("out of memory");
	for (size_t off = 0; off < *len;) {
		ssize_t n = read(fd, buf + off, *len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read image");
		off += (size_t)n;
	}
	close(fd);
	return buf;
}

/* Copy PT_LOAD segments to guest RAM at p_paddr; every offset and size checked
 * against the file and RAM, and the GDT kept clear. Returns the entry point. */
static uint32_t load_elf32(const uint8_t *img, size_t len, uint8_t *ram, uint64_t ram_size)
{
	Elf32_Ehdr eh;
	if (len < sizeof(eh))
		fail("image too short for ELF");
	memcpy(&eh, img, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS32 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_386)
		fail("not a little-endian ELF32 i386 image");
	if (eh.e_phentsize != sizeof(Elf32_Phdr) || eh.e_phnum == 0 ||
	    eh.e_phoff > len || (size_t)eh.e_phnum * sizeof(Elf32_Phdr) > len - eh.e_phoff)
		fail("bad program header table");

	/* Not required to run, but a bench on a non-multiboot image would not be
	 * comparable with QEMU's -kernel: refuse it. */
	int mb = 0;
	for (size_t off = 0; off + 12 <= len && off + 12 <= MB_SEARCH; off += 4) {
		uint32_t h[3];
		memcpy(h, img + off, sizeof(h));
		if (h[0] == MB_HDR_MAGIC && h[0] + h[1] + h[2] == 0) {
			mb = 1;
			break;
		}
	}
	if (!mb)
		fail("no multiboot v1 header in the first 8 KiB");

	int loaded = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf32_Phdr ph;
		memcpy(&ph, img + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		uint64_t start = ph.p_paddr, end = start + ph.p_memsz;
		if (ph.p_filesz > ph.p_memsz || ph.p_offset > len || ph.p_filesz > len - ph.p_offset)
			fail("PT_LOAD segment outside the file");
		if (end > ram_size)
			fail("PT_LOAD segment outside guest RAM");
		if (start < GDT_ADDR + GDT_SIZE && end > GDT_ADDR)
			fail("PT_LOAD segment overlaps the boot GDT");
		memcpy(ram + start, img + ph.p_offset, ph.p_filesz);
		/* The rest up to p_memsz is .bss: fresh anonymous memory is already zero. */
		loaded++;
	}
	if (!loaded)
		fail("no PT_LOAD segment");
	if (eh.e_entry >= ram_size)
		fail("entry point outside guest RAM");
	return eh.e_entry;
}

/* Hand the vCPU what KVM supports, unchanged: the cost is the two ioctls. */
static void set_cpuid(int kvm, int vcpu)
{
	enum { NENT = 256 };
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + NENT * sizeof(c->entries[0]));
	if (!c)
		fail("out of memory");
	c->nent = NENT;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) < 0)
		die("KVM_GET_SUPPORTED_CPUID");
	if (ioctl(vcpu, KVM_SET_CPUID2, c) < 0)
		die("KVM_SET_CPUID2");
	free(c);
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

struct vcpu_ctx {
	int fd;
	struct kvm_run *run;
	int unshare_files;
};

/* The whole VMM: every exit ends the process or goes straight back to KVM_RUN. */
static void *run_vcpu(void *arg)
{
	const struct vcpu_ctx *c = arg;
	const int vcpu = c->fd;
	struct kvm_run *run = c->run;
	/* A thread sharing its fd table makes every ioctl take and drop a reference
	 * on the file (fdget's fast path needs an unshared table): a private copy
	 * of the table brings KVM_RUN back to the single-threaded cost. */
	if (c->unshare_files && unshare(CLONE_FILES) < 0)
		die("unshare(CLONE_FILES)");
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			uint8_t *data = (uint8_t *)run + run->io.data_offset;
			if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == DEBUG_EXIT_PORT) {
				uint32_t v = 0;
				memcpy(&v, data, run->io.size <= 4 ? run->io.size : 4);
				exit((int)((v << 1) | 1));
			}
			if (run->io.direction == KVM_EXIT_IO_IN)
				memset(data, 0xff, (size_t)run->io.size * run->io.count);
			break;
		}
		case KVM_EXIT_INTERNAL_ERROR:
			fprintf(stderr, "rawkvm: KVM internal error, suberror %u\n", run->internal.suberror);
			exit(2);
		case KVM_EXIT_SHUTDOWN:
			fail("guest shutdown (triple fault)");
			break;
		default:
			fprintf(stderr, "rawkvm: unexpected exit reason %u\n", run->exit_reason);
			exit(2);
		}
	}
}

int main(int argc, char **argv)
{
	uint64_t mem = 128ull << 20;
	const char *image = NULL, *irqchip = "none";
	int cpuid = 0, thread = 0, unshare_files = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mem") && i + 1 < argc)
			mem = parse_size(argv[++i]);
		else if (!strcmp(argv[i], "--irqchip") && i + 1 < argc)
			irqchip = argv[++i];
		else if (!strcmp(argv[i], "--cpuid"))
			cpuid = 1;
		else if (!strcmp(argv[i], "--thread"))
			thread = 1;
		else if (!strcmp(argv[i], "--unshare-files"))
			thread = unshare_files = 1;
		else if (argv[i][0] != '-' && !image)
			image = argv[i];
		else {
			fprintf(stderr, "usage: rawkvm [--mem SIZE] [--irqchip none|split|kernel] [--cpuid] [--thread] [--unshare-files] IMAGE\n");
			return 2;
		}
	}
	if (!image) {
		fprintf(stderr, "usage: rawkvm [--mem SIZE] [--irqchip none|split|kernel] [--cpuid] [--thread] [--unshare-files] IMAGE\n");
		return 2;
	}

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		fail("unexpected KVM API version");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");

	/* An irqchip must exist before the first vCPU. */
	if (!strcmp(irqchip, "split")) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_SPLIT_IRQCHIP, .args = { 24 } };
		if (ioctl(vm, KVM_ENABLE_CAP, &cap) < 0)
			die("KVM_CAP_SPLIT_IRQCHIP");
	} else if (!strcmp(irqchip, "kernel")) {
		if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
			die("KVM_CREATE_IRQCHIP");
		struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
		if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
			die("KVM_CREATE_PIT2");
	} else if (strcmp(irqchip, "none")) {
		fail("--irqchip must be none, split or kernel");
	}

	/* MAP_NORESERVE: a 128 MiB guest that touches a few pages costs a few pages. */
	uint8_t *ram = mmap(NULL, mem, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap guest RAM");
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = mem,
		.userspace_addr = (uintptr_t)ram,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");

	size_t len;
	uint8_t *img = read_file(image, &len);
	uint32_t entry = load_elf32(img, len, ram, mem);
	free(img);

	/* Flat GDT: null, code 0x08, data 0x10 (4 GiB, 32-bit). The guests never
	 * reload segments, but a GDT in RAM keeps the hidden state honest. */
	static const uint64_t gdt[3] = { 0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull };
	memcpy(ram + GDT_ADDR, gdt, sizeof(gdt));

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap kvm_run");
	if (cpuid)
		set_cpuid(kvm, vcpu);

	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	set_seg(&sregs.cs, 0x08, 0xb);  /* execute/read, accessed */
	set_seg(&sregs.ds, 0x10, 0x3);  /* read/write, accessed */
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = GDT_ADDR;
	sregs.gdt.limit = GDT_SIZE - 1;
	sregs.cr0 = (sregs.cr0 | 1u) & ~(1ull << 31);  /* PE on, paging off */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");

	struct kvm_regs regs = { .rflags = 2, .rip = entry, .rax = MB_BOOT_MAGIC, .rbx = 0 };
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");

	struct vcpu_ctx ctx = { .fd = vcpu, .run = run, .unshare_files = unshare_files };
	if (thread) {
		/* hvmm's shape: the vCPU loop in its own thread, the main thread waiting. */
		pthread_t t;
		int e = pthread_create(&t, NULL, run_vcpu, &ctx);
		if (e) {
			errno = e;
			die("pthread_create");
		}
		pthread_join(t, NULL);
	} else {
		run_vcpu(&ctx);
	}
	return 2;  /* not reached: run_vcpu ends the process */
}
