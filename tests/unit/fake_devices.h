/*
 * The devices of the registry-driven device tests, built the same way in
 * each: test_snapshot_legacy and test_snapshot_pci (save → load → compare)
 * and test_pause_devices (pause → resume), so that a device added here is
 * covered by both kinds, and each test's coverage check (every registry
 * entry has its case) names it until it is. Also the virtio console's
 * stdin and stdout as pipes of the test's. Include once per test program,
 * after <cmocka.h> and fake_vm.h.
 */
#ifndef HVMM_TEST_FAKE_DEVICES_H
#define HVMM_TEST_FAKE_DEVICES_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/devices.h"
#include "virtio/virtio.h"
#include "virtio/virtio_net.h"
#include "vm.h"

/* Every legacy device the command line can ask for, created as vm.c does
 * it: the registry's dev_create_all with options that ask for all of them
 * (split irqchip, pc-testdev, COM1 without output) and for no PCI function,
 * virtio device or hyperv-testdev (fake_pci_create makes those). Without an event loop
 * the PIT has no timer (its IRQ 0 never fires). 0, or an hvmm exit status
 * with the reason in fake_err. */
static inline int fake_legacy_create(struct vm *vm)
{
	vm->cfg.irqchip = IRQCHIP_SPLIT;
	vm->cfg.serial = SERIAL_NONE;
	vm->cfg.pc_testdev = true;
	vm->cfg.pci_testdev = vm->cfg.edu = vm->cfg.hyperv_testdev = false;
	vm->cfg.rng = false;
	vm->cfg.nr_disks = vm->cfg.nr_nets = vm->cfg.nr_vfio = 0;
	bool console = vm->cfg.console_virtio; /* the UART leaves stdin to it */
	vm->cfg.console_virtio = false;
	struct dev_msi msi = vm->env.msi; /* the test's, if it set one */
	fake_vm_env(vm);
	vm->env.msi = msi;
	int r = dev_create_all(&vm->env, fake_err, sizeof(fake_err));
	vm->cfg.console_virtio = console;
	return r;
}

/* A disk image of `bytes` zeroes under /tmp; its name into path (>= 32
 * bytes). 0 or -1. */
static inline int fake_disk_image(char *path, size_t n, uint64_t bytes)
{
	snprintf(path, n, "/tmp/hvmm-test-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	int r = ftruncate(fd, (off_t)bytes);
	close(fd);
	return r < 0 ? -1 : 0;
}

/*
 * Bus 0's device models behind a host bridge the caller made (pci_init,
 * after evloop_init): virtio-rng, virtio-blk on img, virtio-net on the
 * socket net_fd (the test holds its peer), virtio-console (cfg.console_virtio
 * set; on stdin and stdout), pci-testdev and edu. 0, or -1 (err says why
 * when the network model did).
 */
static inline int fake_pci_create(struct vm *vm, const char *img, int net_fd, char *err, size_t n)
{
	err[0] = 0;
	struct dev_msi msi = vm->env.msi;
	fake_vm_env(vm); /* the PCI host */
	vm->env.msi = msi;
	if (virtio_rng_create(&vm->env, NULL) ||
	    virtio_blk_create(&vm->env, img, false, NULL) ||
	    virtio_net_attach_fd(&vm->env, net_fd, true, err, n) ||
	    virtio_console_create(&vm->env, NULL) ||
	    !fake_dev_create(vm, &pci_testdev_dev_ops) || !fake_dev_create(vm, &edu_dev_ops))
		return -1;
	return 0;
}

/* The consoles' stdin (written through in_w) and stdout (read from out_r,
 * non-blocking): pipes, with the real ones kept for fake_stdio_down. */
static __attribute__((unused)) int in_w = -1, out_r = -1, saved_in = -1, saved_out = -1;

static inline int fake_stdio_up(void)
{
	int in[2], out[2];
	fflush(stdout);
	if (pipe(in) || pipe(out))
		return -1;
	saved_in = dup(STDIN_FILENO);
	saved_out = dup(STDOUT_FILENO);
	dup2(in[0], STDIN_FILENO);
	dup2(out[1], STDOUT_FILENO);
	close(in[0]);
	close(out[1]);
	in_w = in[1];
	out_r = out[0];
	fcntl(out_r, F_SETFL, O_NONBLOCK);
	return 0;
}

static inline void fake_stdio_down(void)
{
	dup2(saved_in, STDIN_FILENO);
	dup2(saved_out, STDOUT_FILENO);
	close(saved_in);
	close(saved_out);
	close(in_w);
	close(out_r);
	in_w = out_r = saved_in = saved_out = -1;
}

#endif
