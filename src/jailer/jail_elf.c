/*
 * jailer: the shared libraries a dynamically linked program needs, copied
 * into the jail. hvmm is static, but its slirp helper cannot be (Debian ships
 * libslirp only as a shared library), and inside the jail there is no /lib:
 * its ELF interpreter and every DT_NEEDED library, recursively, are found in
 * the system's library directories and copied to the same paths in the jail,
 * where the dynamic loader's built-in search finds them.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jailer.h"

#define JAIL_ELF_MAX 32

static const char *const jail_lib_dirs[] = {
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib",
};

struct jail_elf_set {
	char path[JAIL_ELF_MAX][PATH_MAX]; /* host paths, in the order found */
	int n;
};

static int jail_elf_add(struct jail_elf_set *s, const char *path)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->path[i], path) == 0)
			return 0;
	if (s->n == JAIL_ELF_MAX) {
		jail_err("%s: more than %d shared libraries", path, JAIL_ELF_MAX);
		return -1;
	}
	snprintf(s->path[s->n++], PATH_MAX, "%s", path);
	return 0;
}

/* File offset of virtual address va, through the PT_LOAD headers. */
static long jail_elf_off(const Elf64_Phdr *ph, int n, uint64_t va)
{
	for (int i = 0; i < n; i++)
		if (ph[i].p_type == PT_LOAD && va >= ph[i].p_vaddr && va - ph[i].p_vaddr < ph[i].p_filesz)
			return (long)(va - ph[i].p_vaddr + ph[i].p_offset);
	return -1;
}

/* Add path's interpreter and DT_NEEDED libraries to s. */
static int jail_elf_scan(struct jail_elf_set *s, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		jail_err("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t len = (size_t)st.st_size;
	const uint8_t *f = len >= sizeof(Elf64_Ehdr) ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
	close(fd);
	const Elf64_Ehdr *eh = (const void *)f;
	if (f == MAP_FAILED || memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_phoff > len || eh->e_phnum > (len - eh->e_phoff) / sizeof(Elf64_Phdr)) {
		jail_err("%s: not a 64-bit ELF file", path);
		if (f != MAP_FAILED)
			munmap((void *)f, len);
		return -1;
	}
	const Elf64_Phdr *ph = (const void *)(f + eh->e_phoff);
	int r = 0;
	const Elf64_Dyn *dyn = NULL;
	size_t ndyn = 0;
	for (int i = 0; i < eh->e_phnum && !r; i++) {
		if (ph[i].p_offset > len || ph[i].p_filesz > len - ph[i].p_offset)
			continue;
		if (ph[i].p_type == PT_INTERP && ph[i].p_filesz > 1 && f[ph[i].p_offset + ph[i].p_filesz - 1] == 0)
			r = jail_elf_add(s, (const char *)f + ph[i].p_offset);
		if (ph[i].p_type == PT_DYNAMIC) {
			dyn = (const void *)(f + ph[i].p_offset);
			ndyn = ph[i].p_filesz / sizeof(*dyn);
		}
	}
	long strtab = -1;
	for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL; i++)
		if (dyn[i].d_tag == DT_STRTAB)
			strtab = jail_elf_off(ph, eh->e_phnum, dyn[i].d_un.d_ptr);
	for (size_t i = 0; i < ndyn && dyn[i].d_tag != DT_NULL && !r; i++) {
		if (dyn[i].d_tag != DT_NEEDED)
			continue;
		if (strtab < 0 || dyn[i].d_un.d_val >= len - (size_t)strtab ||
		    !memchr(f + strtab + dyn[i].d_un.d_val, 0, len - (size_t)strtab - dyn[i].d_un.d_val)) {
			jail_err("%s: bad dynamic section", path);
			r = -1;
			break;
		}
		const char *name = (const char *)f + strtab + dyn[i].d_un.d_val;
		char lib[PATH_MAX];
		bool found = false;
		for (size_t d = 0; d < sizeof(jail_lib_dirs) / sizeof(jail_lib_dirs[0]) && !found; d++) {
			snprintf(lib, sizeof(lib), "%s/%s", jail_lib_dirs[d], name);
			found = strchr(name, '/') == NULL && access(lib, R_OK) == 0;
		}
		if (!found) {
			jail_err("%s needs %s, which is in none of the library directories", path, name);
			r = -1;
		} else {
			r = jail_elf_add(s, lib);
		}
	}
	munmap((void *)f, len);
	return r;
}

int jail_copy_libs(const char *exe, const char *root)
{
	static struct jail_elf_set s; /* 128 KiB: not on the stack */
	char dst[PATH_MAX];
	s.n = 0;
	if (jail_elf_scan(&s, exe) < 0)
		return JAIL_EXIT_SETUP;
	for (int i = 0; i < s.n; i++) /* s grows while it is walked */
		if (jail_elf_scan(&s, s.path[i]) < 0)
			return JAIL_EXIT_SETUP;
	for (int i = 0; i < s.n; i++) {
		if ((size_t)snprintf(dst, sizeof(dst), "%s%s", root, s.path[i]) >= sizeof(dst)) {
			jail_err("%s%s: path too long", root, s.path[i]);
			return JAIL_EXIT_SETUP;
		}
		int r = jail_mkdirs(dst, strlen(root));
		if (!r)
			r = jail_copy(s.path[i], dst);
		if (r)
			return r;
	}
	return 0;
}
