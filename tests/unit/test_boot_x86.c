/*
 * boot_x86_apply on a real vCPU: the sregs/regs KVM accepts and reads back for
 * each entry mode. Needs /dev/kvm; skips (loudly) without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmocka.h>

#include "boot/boot.h"
#include "util.h"

struct kvm {
	int kvm, vm, vcpu;
};

static int setup(void **state)
{
	static struct kvm k;
	k.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	k.vm = k.vcpu = -1;
	if (k.kvm >= 0)
		k.vm = ioctl(k.kvm, KVM_CREATE_VM, 0);
	if (k.vm >= 0)
		k.vcpu = ioctl(k.vm, KVM_CREATE_VCPU, 0);
	if (k.vcpu < 0)
		fprintf(stderr, "test_boot_x86: SKIPPING, no usable /dev/kvm (%s)\n", strerror(errno));
	*state = &k;
	return 0;
}

static int teardown(void **state)
{
	struct kvm *k = *state;
	if (k->vcpu >= 0)
		close(k->vcpu);
	if (k->vm >= 0)
		close(k->vm);
	if (k->kvm >= 0)
		close(k->kvm);
	return 0;
}

static void readback(struct kvm *k, struct kvm_sregs *sr, struct kvm_regs *r)
{
	assert_int_equal(ioctl(k->vcpu, KVM_GET_SREGS, sr), 0);
	assert_int_equal(ioctl(k->vcpu, KVM_GET_REGS, r), 0);
}

static void test_real(void **state)
{
	struct kvm *k = *state;
	if (k->vcpu < 0)
		skip();
	struct boot_entry e = { .mode = BOOT_MODE_REAL16, .cs_sel = 0x1000, .rip = 0, .rsp = 0x8000 };
	assert_int_equal(boot_x86_apply(k->vcpu, &e), 0);
	struct kvm_sregs sr;
	struct kvm_regs r;
	readback(k, &sr, &r);
	assert_int_equal(sr.cr0 & 1, 0);
	assert_int_equal(sr.cs.selector, 0x1000);
	assert_int_equal(sr.cs.base, 0x10000);
	assert_int_equal(sr.ds.base, 0x10000);
	assert_int_equal(sr.ss.base, 0);
	assert_int_equal(r.rip, 0);
	assert_int_equal(r.rsp, 0x8000);
	assert_int_equal(r.rflags, 2);
}

static void test_prot32(void **state)
{
	struct kvm *k = *state;
	if (k->vcpu < 0)
		skip();
	struct boot_entry e = { .mode = BOOT_MODE_PROT32, .rip = 0x100000, .rsp = BOOT_STACK_TOP,
				.rax = 0x2BADB002, .rbx = BOOT_INFO };
	assert_int_equal(boot_x86_apply(k->vcpu, &e), 0);
	struct kvm_sregs sr;
	struct kvm_regs r;
	readback(k, &sr, &r);
	assert_int_equal(sr.cr0 & 0x80000001u, 1); /* PE, no PG */
	assert_int_equal(sr.efer & 0x500, 0);
	assert_int_equal(sr.cs.selector, 0x10);
	assert_int_equal(sr.cs.db, 1);
	assert_int_equal(sr.cs.l, 0);
	assert_int_equal(sr.cs.limit, 0xffffffff);
	assert_int_equal(sr.ds.selector, 0x18);
	assert_int_equal(sr.ss.selector, 0x18);
	assert_int_equal(sr.gdt.base, BOOT_GDT);
	assert_int_equal(sr.gdt.limit, 39);
	assert_int_equal(r.rip, 0x100000);
	assert_int_equal(r.rax, 0x2BADB002);
	assert_int_equal(r.rbx, BOOT_INFO);
	assert_int_equal(r.rsp, BOOT_STACK_TOP);
}

static void test_long64(void **state)
{
	struct kvm *k = *state;
	if (k->vcpu < 0)
		skip();
	struct boot_entry e = { .mode = BOOT_MODE_LONG64, .rip = 0x200000, .rsp = BOOT_STACK_TOP,
				.cr3 = BOOT_PML4, .rsi = 0x1234 };
	assert_int_equal(boot_x86_apply(k->vcpu, &e), 0);
	struct kvm_sregs sr;
	struct kvm_regs r;
	readback(k, &sr, &r);
	assert_int_equal(sr.cr0 & 0x80000001u, 0x80000001u);
	assert_int_equal(sr.cr3, BOOT_PML4);
	assert_true(sr.cr4 & (1 << 5));
	assert_int_equal(sr.efer & 0x500, 0x500);
	assert_int_equal(sr.cs.selector, 0x10);
	assert_int_equal(sr.cs.l, 1);
	assert_int_equal(sr.cs.db, 0);
	assert_int_equal(r.rip, 0x200000);
	assert_int_equal(r.rsi, 0x1234);
}

static void test_bad(void **state)
{
	struct kvm *k = *state;
	struct boot_entry e = { .mode = (enum boot_mode)7 };
	if (k->vcpu >= 0)
		assert_int_equal(boot_x86_apply(k->vcpu, &e), -EINVAL);
	assert_true(boot_x86_apply(-1, &e) < 0); /* EBADF from KVM_GET_SREGS */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real),
		cmocka_unit_test(test_prot32),
		cmocka_unit_test(test_long64),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
