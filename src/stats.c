#include "stats.h"

#include <errno.h>
#include <json-c/json.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coalesce.h"
#include "dirtylog.h"
#include "devices/devices.h"
#include "inject.h"
#include "irq.h"
#include "lapic.h"
#include "pci.h"
#include "util.h"
#include "vcpu.h"
#include "vfio.h"
#include "iommu.h"
#include "virtio/virtio.h"
#include "virtio/virtio_net.h"
#include "vm.h"
#include "lifecycle.h"
#include "migrate.h"
#include "snapshot.h"
#include "vmstate.h"

/* Enough for every MSI-X vector of a full bus (31 slots, a few vectors each). */
#define STATS_IRT_MAX 256

const char *stats_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN",
		[KVM_EXIT_EXCEPTION] = "EXCEPTION",
		[KVM_EXIT_IO] = "IO",
		[KVM_EXIT_HYPERCALL] = "HYPERCALL",
		[KVM_EXIT_DEBUG] = "DEBUG",
		[KVM_EXIT_HLT] = "HLT",
		[KVM_EXIT_MMIO] = "MMIO",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
		[KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
		[KVM_EXIT_INTR] = "INTR",
		[KVM_EXIT_SET_TPR] = "SET_TPR",
		[KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
		[KVM_EXIT_NMI] = "NMI",
		[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_OSI] = "OSI",
		[KVM_EXIT_PAPR_HCALL] = "PAPR_HCALL",
		[KVM_EXIT_WATCHDOG] = "WATCHDOG",
		[KVM_EXIT_EPR] = "EPR",
		[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
		[KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI",
		[KVM_EXIT_HYPERV] = "HYPERV",
		[KVM_EXIT_X86_RDMSR] = "X86_RDMSR",
		[KVM_EXIT_X86_WRMSR] = "X86_WRMSR",
		[KVM_EXIT_DIRTY_RING_FULL] = "DIRTY_RING_FULL",
		[KVM_EXIT_NOTIFY] = "NOTIFY",
	};
	if (reason < ARRAY_SIZE(names) && names[reason])
		return names[reason];
	return "OTHER";
}

const char *stats_io_kind_name(enum stats_io_kind k)
{
	switch (k) {
	case STATS_PIO_IN: return "in";
	case STATS_PIO_OUT: return "out";
	case STATS_MMIO_READ: return "read";
	case STATS_MMIO_WRITE: return "write";
	}
	return "?";
}

void stats_record_exit(struct stats_vcpu *s, uint32_t reason, uint64_t ns)
{
	stats_time(&s->reason[reason < STATS_MAX_REASON ? reason : 0], ns);
}

void stats_record_io(struct stats_vcpu *s, enum stats_io_kind kind, uint64_t addr, bool handled,
		     uint64_t ns)
{
	/* open addressing keyed by (address, kind); a guest that touches more
	 * distinct addresses than the table holds is counted in io_dropped */
	uint64_t h = (addr * 0x9E3779B97F4A7C15ull) ^ kind;
	for (unsigned probe = 0; probe < 16; probe++) {
		struct stats_io *e = &s->io[(h + probe) & (STATS_IO_SLOTS - 1)];
		if (!e->used) {
			e->used = true;
			e->addr = addr;
			e->kind = (uint8_t)kind;
			e->unhandled = !handled;
		} else if (e->addr != addr || e->kind != kind) {
			continue;
		}
		stats_time(&e->t, ns);
		return;
	}
	s->io_dropped++;
}

int stats_kvm_read(int fd, struct stats_kvm *out)
{
	struct kvm_stats_header hdr;
	out->n = 0;
	if (pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
		return -EIO;
	size_t dsz = sizeof(struct kvm_stats_desc) + hdr.name_size;
	if (hdr.num_desc > 4096 || hdr.name_size > 4096)
		return -EINVAL;
	uint8_t *descs = malloc(dsz * hdr.num_desc);
	if (!descs)
		return -ENOMEM;
	if (pread(fd, descs, dsz * hdr.num_desc, hdr.desc_offset) != (ssize_t)(dsz * hdr.num_desc)) {
		free(descs);
		return -EIO;
	}
	/* All values in one read: the data block ends with the last descriptor's. */
	size_t data_len = 0;
	for (uint32_t i = 0; i < hdr.num_desc; i++) {
		const struct kvm_stats_desc *d = (const void *)(descs + i * dsz);
		size_t end = (size_t)d->offset + (size_t)d->size * sizeof(uint64_t);
		if (d->size > 4096 || d->offset > (1u << 20))
			goto bad;
		if (end > data_len)
			data_len = end;
	}
	uint8_t *data = malloc(data_len ? data_len : 1);
	if (!data)
		goto bad;
	if (pread(fd, data, data_len, hdr.data_offset) != (ssize_t)data_len) {
		free(data);
		goto bad;
	}
	for (uint32_t i = 0; i < hdr.num_desc && out->n < STATS_KVM_MAX; i++) {
		const struct kvm_stats_desc *d = (const void *)(descs + i * dsz);
		/* histograms have size > 1; the first bucket is not a useful total */
		if (d->size != 1)
			continue;
		snprintf(out->name[out->n], sizeof(out->name[0]), "%.*s", (int)hdr.name_size, d->name);
		memcpy(&out->value[out->n++], data + d->offset, sizeof(uint64_t));
	}
	free(data);
	free(descs);
	return 0;
bad:
	free(descs);
	return -EIO;
}

uint64_t stats_kvm_get(const struct stats_kvm *k, const char *name)
{
	for (int i = 0; i < k->n; i++)
		if (strcmp(k->name[i], name) == 0)
			return k->value[i];
	return 0;
}

uint64_t stats_userspace_exits(struct vm *vm)
{
	uint64_t n = 0;
	for (int c = 0; c < vm->ncpus; c++)
		for (int r = 0; r < STATS_MAX_REASON; r++)
			if (r != KVM_EXIT_INTR) /* kicks are hvmm's own doing, not guest exits */
				n += vm->vcpus[c]->stats.reason[r].count;
	return n;
}

/* The KVM counters shown by --stats: the exits that never reach hvmm. */
static const char *const stats_kvm_shown[] = {
	"exits", "io_exits", "mmio_exits", "halt_exits", "irq_exits", "signal_exits",
	"insn_emulation", "insn_emulation_fail", "irq_injections", "nmi_injections",
	"request_irq_exits", "irq_window_exits", "halt_wakeup", "pf_taken", "pf_fixed",
	"pf_guest", "tlb_flush", "hypercalls",
};

static const char *stats_io_space(enum stats_io_kind k)
{
	return k <= STATS_PIO_OUT ? "pio" : "mmio";
}

/*
 * The interrupt remapping table as KVM holds it: each MSI-X vector the guest
 * programmed, the GSI hvmm routes it through, and where the route sends it.
 */
static void stats_print_irt(struct vm *vm, FILE *f)
{
	struct pci_irt_entry *e = calloc(STATS_IRT_MAX, sizeof(*e));
	if (!e)
		return;
	unsigned n = pci_irt_snapshot(vm, e, STATS_IRT_MAX);
	fprintf(f, "interrupt remapping table (MSI-X vector -> KVM GSI route): %u entr%s\n", n,
		n == 1 ? "y" : "ies");
	fprintf(f, "routing table rewrites (KVM_SET_GSI_ROUTING, IOAPIC and MSI-X routes): %llu\n",
		(unsigned long long)irq_rewrites(vm));
	if (n)
		fprintf(f, "  %-16s %-7s %6s %5s %8s %6s %-6s %-8s %10s %10s\n", "device", "devfn", "vector",
			"gsi", "apic id", "vec", "masked", "delivery", "sent", "on unmask");
	for (unsigned i = 0; i < n; i++)
		fprintf(f, "  %-16s %02x.%-4u %6u %5u %8u %#6x %-6s %-8s %10llu %10llu\n", e[i].device,
			e[i].devfn >> 3, e[i].devfn & 7, e[i].vector, e[i].gsi, e[i].dest_apic_id,
			e[i].guest_vector, e[i].masked ? "yes" : "no", e[i].irqfd ? "irqfd" : "injected",
			(unsigned long long)e[i].sent, (unsigned long long)e[i].pending_sent);
	free(e);
}

static json_object *stats_json_irt(struct vm *vm)
{
	json_object *a = json_object_new_array();
	struct pci_irt_entry *e = calloc(STATS_IRT_MAX, sizeof(*e));
	if (!e)
		return a;
	unsigned n = pci_irt_snapshot(vm, e, STATS_IRT_MAX);
	for (unsigned i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "device", json_object_new_string(e[i].device));
		json_object_object_add(o, "devfn", json_object_new_int((int)e[i].devfn));
		json_object_object_add(o, "vector", json_object_new_int((int)e[i].vector));
		json_object_object_add(o, "gsi", json_object_new_int((int)e[i].gsi));
		json_object_object_add(o, "dest_apic_id", json_object_new_int((int)e[i].dest_apic_id));
		json_object_object_add(o, "guest_vector", json_object_new_int((int)e[i].guest_vector));
		json_object_object_add(o, "masked", json_object_new_boolean(e[i].masked));
		json_object_object_add(o, "irqfd", json_object_new_boolean(e[i].irqfd));
		json_object_object_add(o, "delivery",
				       json_object_new_string(e[i].irqfd ? "irqfd" : "injected"));
		json_object_object_add(o, "sent", json_object_new_uint64(e[i].sent));
		json_object_object_add(o, "sent_on_unmask", json_object_new_uint64(e[i].pending_sent));
		json_object_array_add(a, o);
	}
	free(e);
	return a;
}

/* ---- the IOMMU (iommu.c keeps the counters) ---- */

static void stats_print_iommu(struct vm *vm, FILE *f)
{
	struct iommu_stats st;
	if (!iommu_get_stats(vm->iommu, &st))
		return;
	fprintf(f, "intel-iommu: translation %s, interrupt remapping %s, queued invalidation %s; "
		"%llu DMA translations (IOTLB %llu hits, %llu misses, %llu flushes), %llu messages remapped, %llu interrupts blocked, %llu faults, "
		"%llu invalidation descriptors, %llu event interrupts\n",
		(st.gsts & (1u << 31)) ? "on" : "off", (st.gsts & (1u << 25)) ? "on" : "off",
		(st.gsts & (1u << 26)) ? "on" : "off", (unsigned long long)st.translations,
		(unsigned long long)st.iotlb_hits, (unsigned long long)st.iotlb_misses,
		(unsigned long long)st.iotlb_flushes,
		(unsigned long long)st.remapped, (unsigned long long)st.blocked,
		(unsigned long long)st.faults, (unsigned long long)st.descriptors,
		(unsigned long long)st.events);
}

static json_object *stats_json_iommu(struct vm *vm)
{
	struct iommu_stats st;
	if (!iommu_get_stats(vm->iommu, &st))
		return NULL; /* JSON null: no unit */
	json_object *o = json_object_new_object();
	json_object_object_add(o, "gsts", json_object_new_uint64(st.gsts));
	json_object_object_add(o, "translations", json_object_new_uint64(st.translations));
	json_object_object_add(o, "iotlb_hits", json_object_new_uint64(st.iotlb_hits));
	json_object_object_add(o, "iotlb_misses", json_object_new_uint64(st.iotlb_misses));
	json_object_object_add(o, "iotlb_flushes", json_object_new_uint64(st.iotlb_flushes));
	json_object_object_add(o, "remapped", json_object_new_uint64(st.remapped));
	json_object_object_add(o, "blocked", json_object_new_uint64(st.blocked));
	json_object_object_add(o, "faults", json_object_new_uint64(st.faults));
	json_object_object_add(o, "descriptors", json_object_new_uint64(st.descriptors));
	json_object_object_add(o, "events", json_object_new_uint64(st.events));
	return o;
}

/* ---- virtio devices (virtio_pci.c keeps the counters) ---- */

static void stats_print_virtio(struct vm *vm, FILE *f)
{
	struct virtio_dev *devs[PCI_MAX_SLOTS];
	unsigned n = virtio_devices(&vm->devs, devs, PCI_MAX_SLOTS);
	if (!n)
		return;
	fprintf(f, "virtio  %-16s %-7s %10s %10s %10s %10s %10s %10s %6s\n", "device", "pci", "notifies",
		"interrupts", "suppressed", "early", "bad_chains", "needs_reset", "resets");
	for (unsigned i = 0; i < n; i++) {
		struct virtio_dev_stats st;
		virtio_dev_get_stats(devs[i], &st);
		unsigned devfn = virtio_dev_devfn(devs[i]);
		fprintf(f, "        %-16s 00:%02x.%x %10llu %10llu %10llu %10llu %10llu %10llu %6llu\n",
			virtio_dev_name(devs[i]), devfn >> 3, devfn & 7, (unsigned long long)st.notifies,
			(unsigned long long)st.interrupts, (unsigned long long)st.suppressed,
			(unsigned long long)st.early_notifies, (unsigned long long)st.bad_chains,
			(unsigned long long)st.needs_reset, (unsigned long long)st.resets);
	}
	for (unsigned i = 0; i < n; i++) {
		struct virtio_net_stats ns;
		if (virtio_net_get_stats(devs[i], &ns) < 0)
			continue;
		unsigned devfn = virtio_dev_devfn(devs[i]);
		fprintf(f, "virtio-net 00:%02x.%x: rx %llu frames %llu bytes, tx %llu frames %llu bytes; "
			"rate limit (0: none) tx %llu B/s %llu frames/s, rx %llu B/s %llu frames/s: "
			"held back tx %llu, rx %llu times\n", devfn >> 3, devfn & 7,
			(unsigned long long)ns.rx_frames, (unsigned long long)ns.rx_bytes,
			(unsigned long long)ns.tx_frames, (unsigned long long)ns.tx_bytes,
			(unsigned long long)ns.tx_limit_bps, (unsigned long long)ns.tx_limit_pps,
			(unsigned long long)ns.rx_limit_bps, (unsigned long long)ns.rx_limit_pps,
			(unsigned long long)ns.tx_throttled, (unsigned long long)ns.rx_throttled);
	}
	/* Behind the IOMMU: each device's IOVA translations (a line of their
	 * own, so the table above keeps its columns). */
	for (unsigned i = 0; i < n; i++) {
		struct virtio_dev_stats st;
		virtio_dev_get_stats(devs[i], &st);
		unsigned devfn = virtio_dev_devfn(devs[i]);
		if (st.dma_translations)
			fprintf(f, "virtio-dma %s 00:%02x.%x: %llu IOVA translations, %llu DMA faults\n",
				virtio_dev_name(devs[i]), devfn >> 3, devfn & 7,
				(unsigned long long)st.dma_translations, (unsigned long long)st.dma_faults);
	}
}

/* A virtio-net device's own counters, under "net" in its "virtio" entry. */
static json_object *stats_json_net(const struct virtio_net_stats *ns)
{
	const struct {
		const char *name;
		uint64_t v;
	} f[] = {
		{ "rx_frames", ns->rx_frames }, { "rx_bytes", ns->rx_bytes },
		{ "rx_too_big", ns->rx_too_big }, { "rx_bad", ns->rx_bad }, { "rx_stalls", ns->rx_stalls },
		{ "tx_frames", ns->tx_frames }, { "tx_bytes", ns->tx_bytes }, { "tx_bad", ns->tx_bad },
		{ "tx_errors", ns->tx_errors }, { "tx_blocked", ns->tx_blocked },
		{ "backend_gone", ns->backend_gone },
		{ "tx_limit_bps", ns->tx_limit_bps }, { "tx_limit_pps", ns->tx_limit_pps },
		{ "rx_limit_bps", ns->rx_limit_bps }, { "rx_limit_pps", ns->rx_limit_pps },
		{ "tx_throttled", ns->tx_throttled }, { "rx_throttled", ns->rx_throttled },
	};
	json_object *o = json_object_new_object();
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		json_object_object_add(o, f[i].name, json_object_new_uint64(f[i].v));
	return o;
}

static json_object *stats_json_virtio(struct vm *vm)
{
	json_object *arr = json_object_new_array();
	struct virtio_dev *devs[PCI_MAX_SLOTS];
	unsigned n = virtio_devices(&vm->devs, devs, PCI_MAX_SLOTS);
	for (unsigned i = 0; i < n; i++) {
		struct virtio_dev_stats st;
		virtio_dev_get_stats(devs[i], &st);
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(virtio_dev_name(devs[i])));
		json_object_object_add(o, "devfn", json_object_new_int((int)virtio_dev_devfn(devs[i])));
		json_object_object_add(o, "status", json_object_new_int(virtio_dev_status(devs[i])));
		json_object_object_add(o, "notifies", json_object_new_uint64(st.notifies));
		json_object_object_add(o, "interrupts", json_object_new_uint64(st.interrupts));
		json_object_object_add(o, "suppressed", json_object_new_uint64(st.suppressed));
		json_object_object_add(o, "bad_chains", json_object_new_uint64(st.bad_chains));
		json_object_object_add(o, "needs_reset", json_object_new_uint64(st.needs_reset));
		json_object_object_add(o, "early_notifies", json_object_new_uint64(st.early_notifies));
		json_object_object_add(o, "resets", json_object_new_uint64(st.resets));
		json_object_object_add(o, "refused", json_object_new_uint64(st.refused));
		struct virtio_net_stats ns;
		if (virtio_net_get_stats(devs[i], &ns) == 0)
			json_object_object_add(o, "net", stats_json_net(&ns));
		json_object_object_add(o, "dma_translations", json_object_new_uint64(st.dma_translations));
		json_object_object_add(o, "dma_faults", json_object_new_uint64(st.dma_faults));
		json_object_array_add(arr, o);
	}
	return arr;
}

/* One line per passed-through device: what hvmm still forwarded. */
static void stats_print_vfio(struct vm *vm, FILE *f)
{
	struct vfio_pci_stats st;
	const char *bdf;
	for (unsigned i = 0; vfio_pci_stats(&vm->devs, i, &st, &bdf); i++)
		fprintf(f, "vfio %s: %llu KiB of BARs mapped (%llu maps, %llu unmaps), forwarded %llu BAR reads, "
			"%llu BAR writes, %llu config reads, %llu config writes\n",
			bdf, (unsigned long long)(st.mapped_bytes >> 10), (unsigned long long)st.maps,
			(unsigned long long)st.unmaps, (unsigned long long)st.bar_reads,
			(unsigned long long)st.bar_writes, (unsigned long long)st.cfg_reads,
			(unsigned long long)st.cfg_writes);
}

void stats_print(struct vm *vm, FILE *f)
{
	fprintf(f, "\n== hvmm exit statistics (%d vCPU%s) ==\n", vm->ncpus, vm->ncpus == 1 ? "" : "s");
	fprintf(f, "user-space exits: %llu (handling time in hvmm: KVM_RUN return to next KVM_RUN)\n",
		(unsigned long long)stats_userspace_exits(vm));
	fprintf(f, "coalesced writes: %llu (buffered by KVM, applied without an exit)\n",
		(unsigned long long)coalesce_count(vm));
	for (int c = 0; c < vm->ncpus; c++) {
		const struct stats_vcpu *s = &vm->vcpus[c]->stats;
		fprintf(f, "vcpu%d  %-16s %10s %12s %10s %10s %10s\n", c, "exit reason", "count",
			"total us", "min ns", "avg ns", "max ns");
		for (int r = 0; r < STATS_MAX_REASON; r++) {
			const struct stats_timing *t = &s->reason[r];
			if (!t->count)
				continue;
			fprintf(f, "       %-16s %10llu %12.1f %10llu %10llu %10llu\n",
				stats_reason_name((uint32_t)r), (unsigned long long)t->count,
				(double)t->total_ns / 1e3, (unsigned long long)t->min_ns,
				(unsigned long long)(t->total_ns / t->count),
				(unsigned long long)t->max_ns);
		}
		for (int i = 0; i < STATS_IO_SLOTS; i++) {
			const struct stats_io *e = &s->io[i];
			if (!e->used)
				continue;
			fprintf(f, "         %-4s %-5s 0x%-10llx %10llu %12.1f %s\n",
				stats_io_space(e->kind), stats_io_kind_name(e->kind),
				(unsigned long long)e->addr, (unsigned long long)e->t.count,
				(double)e->t.total_ns / 1e3, e->unhandled ? "(unhandled)" : "");
		}
		if (s->io_dropped)
			fprintf(f, "         (%llu accesses at addresses beyond the table)\n",
				(unsigned long long)s->io_dropped);
		if (s->kvm.n) {
			fprintf(f, "       inside KVM (binary stats fd):");
			int col = 0;
			for (size_t k = 0; k < ARRAY_SIZE(stats_kvm_shown); k++) {
				uint64_t v = stats_kvm_get(&s->kvm, stats_kvm_shown[k]);
				if (!v)
					continue;
				fprintf(f, "%s%s=%llu", col++ % 4 ? "  " : "\n         ", stats_kvm_shown[k],
					(unsigned long long)v);
			}
			fputc('\n', f);
		}
		lapic_stats_print(vm->vcpus[c], f);
	}
	lapic_stats_print_vm(vm, f);
	stats_print_irt(vm, f);
	struct boot_timer_mark marks[BOOT_TIMER_MAX_MARKS];
	unsigned nm = boot_timer_marks(dev_find(&vm->devs, "boot-timer", 0), marks, BOOT_TIMER_MAX_MARKS);
	for (unsigned i = 0; i < nm && i < BOOT_TIMER_MAX_MARKS; i++)
		fprintf(f, "boot-time mark %u: value 0x%x at %.3f ms (via %s)\n", i, marks[i].value,
			(double)marks[i].ns / 1e6, marks[i].mmio ? "MMIO" : "port");
	stats_print_virtio(vm, f);
	stats_print_vfio(vm, f);
	stats_print_iommu(vm, f);
	uint64_t dropped = uart_dropped(dev_find(&vm->devs, "uart", 0));
	if (dropped)
		fprintf(f, "serial output dropped past --serial-limit: %llu bytes\n", (unsigned long long)dropped);
	lifecycle_print(vm, f);
	snapshot_print(vm, f);
	migrate_print(vm, f);
	for (int c = 0; c < vm->ncpus; c++)
		vmstate_print(vm->vcpus[c], f);
	fprintf(f, "guest started at %.3f ms (VM built, image loaded)\n", (double)vm->run_ns / 1e6);
	fprintf(f, "stopped at %.3f ms: %s\n", (double)vm->stop_ns / 1e6, vm->stop_msg);
}

static const char *stats_inject_kind(enum inject_kind k)
{
	return k == INJECT_IRQ ? "irq" : k == INJECT_NMI ? "nmi" : "exception";
}

/* --inject: what was asked for and when it went in (ns since hvmm started). */
static json_object *stats_json_injections(struct vm *vm)
{
	struct inject_result r[INJECT_MAX];
	unsigned n = inject_results(vm, r, INJECT_MAX);
	json_object *a = json_object_new_array();
	for (unsigned i = 0; i < n; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "kind", json_object_new_string(stats_inject_kind(r[i].req.kind)));
		json_object_object_add(o, "vector",
				       json_object_new_int(r[i].req.kind == INJECT_NMI ? 2 : r[i].req.vector));
		json_object_object_add(o, "error_code", r[i].req.has_error_code
								? json_object_new_uint64(r[i].req.error_code)
								: NULL);
		json_object_object_add(o, "at_ms", json_object_new_uint64(r[i].req.at_ms));
		json_object_object_add(o, "injected_ns", json_object_new_uint64(r[i].injected_ns));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *stats_json_timing(const struct stats_timing *t)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "count", json_object_new_uint64(t->count));
	json_object_object_add(o, "total_ns", json_object_new_uint64(t->total_ns));
	json_object_object_add(o, "min_ns", json_object_new_uint64(t->min_ns));
	json_object_object_add(o, "max_ns", json_object_new_uint64(t->max_ns));
	return o;
}

static json_object *stats_json_vcpu(struct vcpu *v, bool with_state)
{
	const struct stats_vcpu *s = &v->stats;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int(v->id));
	json_object *ex = json_object_new_object();
	for (int r = 0; r < STATS_MAX_REASON; r++)
		if (s->reason[r].count)
			json_object_object_add(ex, stats_reason_name((uint32_t)r),
					       stats_json_timing(&s->reason[r]));
	json_object_object_add(o, "exits", ex);
	json_object *io = json_object_new_array();
	for (int i = 0; i < STATS_IO_SLOTS; i++) {
		const struct stats_io *e = &s->io[i];
		if (!e->used)
			continue;
		json_object *a = stats_json_timing(&e->t);
		json_object_object_add(a, "space", json_object_new_string(stats_io_space(e->kind)));
		json_object_object_add(a, "dir", json_object_new_string(stats_io_kind_name(e->kind)));
		json_object_object_add(a, "addr", json_object_new_uint64(e->addr));
		json_object_object_add(a, "handled", json_object_new_boolean(!e->unhandled));
		json_object_array_add(io, a);
	}
	json_object_object_add(o, "io", io);
	json_object_object_add(o, "io_dropped", json_object_new_uint64(s->io_dropped));
	json_object *state = with_state ? vmstate_json(v) : NULL;
	if (state)
		json_object_object_add(o, "state", state);
	json_object *kvm = json_object_new_object();
	for (int k = 0; k < s->kvm.n; k++)
		json_object_object_add(kvm, s->kvm.name[k], json_object_new_uint64(s->kvm.value[k]));
	json_object_object_add(o, "kvm", kvm);
	json_object *lapic = lapic_stats_json(v);
	if (lapic)
		json_object_object_add(o, "lapic", lapic);
	return o;
}

/* Passed-through functions: what hvmm still forwarded (a BAR that is mapped
 * into the guest never reaches it) and the mappings it moved. */
static json_object *stats_json_vfio(struct vm *vm)
{
	json_object *arr = json_object_new_array();
	struct vfio_pci_stats st;
	const char *bdf;
	for (unsigned i = 0; vfio_pci_stats(&vm->devs, i, &st, &bdf); i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "host", json_object_new_string(bdf));
		json_object_object_add(o, "bar_reads", json_object_new_uint64(st.bar_reads));
		json_object_object_add(o, "bar_writes", json_object_new_uint64(st.bar_writes));
		json_object_object_add(o, "config_reads", json_object_new_uint64(st.cfg_reads));
		json_object_object_add(o, "config_writes", json_object_new_uint64(st.cfg_writes));
		json_object_object_add(o, "maps", json_object_new_uint64(st.maps));
		json_object_object_add(o, "unmaps", json_object_new_uint64(st.unmaps));
		json_object_object_add(o, "mapped_bytes", json_object_new_uint64(st.mapped_bytes));
		json_object_array_add(arr, o);
	}
	return arr;
}

json_object *stats_irt_json(struct vm *vm)
{
	return stats_json_irt(vm);
}

json_object *stats_json(struct vm *vm, bool vcpu_state)
{
	json_object *root = json_object_new_object();
	json_object_object_add(root, "userspace_exits", json_object_new_uint64(stats_userspace_exits(vm)));
	json_object_object_add(root, "coalesced_writes", json_object_new_uint64(coalesce_count(vm)));
	/* totals by reason across vCPUs, the number most readers want first */
	json_object *by = json_object_new_object();
	for (int r = 0; r < STATS_MAX_REASON; r++) {
		uint64_t n = 0;
		for (int c = 0; c < vm->ncpus; c++)
			n += vm->vcpus[c]->stats.reason[r].count;
		if (n)
			json_object_object_add(by, stats_reason_name((uint32_t)r), json_object_new_uint64(n));
	}
	json_object_object_add(root, "exits_by_reason", by);
	json_object *vcpus = json_object_new_array();
	for (int c = 0; c < vm->ncpus; c++)
		json_object_array_add(vcpus, stats_json_vcpu(vm->vcpus[c], vcpu_state));
	json_object_object_add(root, "vcpus", vcpus);

	json_object *marks = json_object_new_array();
	struct boot_timer_mark m[BOOT_TIMER_MAX_MARKS];
	unsigned nm = boot_timer_marks(dev_find(&vm->devs, "boot-timer", 0), m, BOOT_TIMER_MAX_MARKS);
	for (unsigned i = 0; i < nm && i < BOOT_TIMER_MAX_MARKS; i++) {
		json_object *a = json_object_new_object();
		json_object_object_add(a, "ns", json_object_new_uint64(m[i].ns));
		json_object_object_add(a, "value", json_object_new_uint64(m[i].value));
		json_object_object_add(a, "via", json_object_new_string(m[i].mmio ? "mmio" : "pio"));
		json_object_array_add(marks, a);
	}
	json_object_object_add(root, "boot_marks", marks);
	json_object_object_add(root, "irt", stats_json_irt(vm));
	json_object_object_add(root, "irt_rewrites", json_object_new_uint64(irq_rewrites(vm)));
	/* false with --no-irqfd and with --irqchip user, which cannot have them */
	json_object_object_add(root, "device_irqfds", json_object_new_boolean(!vm->cfg.no_irqfd));
	json_object_object_add(root, "injections", stats_json_injections(vm));
	uint64_t now[3];
	inject_now_counts(vm, now);
	json_object *api_inj = json_object_new_object();
	json_object_object_add(api_inj, "irq", json_object_new_uint64(now[INJECT_IRQ]));
	json_object_object_add(api_inj, "nmi", json_object_new_uint64(now[INJECT_NMI]));
	json_object_object_add(api_inj, "exception", json_object_new_uint64(now[INJECT_EXCEPTION]));
	json_object_object_add(root, "api_injections", api_inj);
	json_object_object_add(root, "dirty_log", dirtylog_json(vm));

	json_object *stop = json_object_new_object();
	json_object_object_add(stop, "status", json_object_new_int(vm->exit_status));
	json_object_object_add(stop, "message", json_object_new_string(vm->stop_msg));
	json_object_object_add(stop, "ns", json_object_new_uint64(vm->stop_ns));
	json_object_object_add(root, "stop", stop);
	json_object_object_add(root, "run_ns", json_object_new_uint64(vm->run_ns));
	json_object_object_add(root, "serial_dropped", json_object_new_uint64(uart_dropped(dev_find(&vm->devs, "uart", 0))));
	json_object_object_add(root, "irqchip", json_object_new_string(irq_mode_name(vm->cfg.irqchip)));
	/* every device with counters, through its stats op (device.h) */
	json_object *devs = json_object_new_object();
	dev_stats_all(&vm->devs, devs);
	json_object_object_add(root, "devices", devs);
	json_object_object_add(root, "virtio", stats_json_virtio(vm));
	json_object_object_add(root, "vfio", stats_json_vfio(vm));
	json_object_object_add(root, "iommu", stats_json_iommu(vm));
	json_object_object_add(root, "lifecycle", lifecycle_json(vm));
	json_object_object_add(root, "snapshot", snapshot_json(vm));
	json_object *mj = migrate_json(vm);
	if (mj)
		json_object_object_add(root, "migration", mj);
	return root;
}

int stats_write_json(struct vm *vm, const char *path)
{
	json_object *root = stats_json(vm, true);
	int r = json_object_to_file_ext(path, root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	json_object_put(root);
	return r < 0 ? -EIO : 0;
}
