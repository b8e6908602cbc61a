/*
 * options: hvmm run's options (options.h). Every option is checked here,
 * before anything is built; what needs KVM or a file is checked later
 * (preflight.c, vm_create).
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controls.h"
#include "inject.h"
#include "ratelimit.h"
#include "util.h"
#include "vfio.h"
#include "vm.h"

void options_usage(FILE *f)
{
	fputs("Usage: hvmm run [options] IMAGE\n"
	      "       hvmm run [options] --kernel KERNEL [--initrd FILE]\n"
	      "       hvmm lab [NAME | all] [--json] [--out DIR]\n"
	      "       hvmm ctl SOCKET COMMAND (info, pause, resume, stats, ...: hvmm ctl --help)\n"
	      "       hvmm snapshot-merge BASE DIFF... (diff snapshots onto their base: --help)\n"
	      "       hvmm --help | --version\n"
	      "\n"
	      "Run IMAGE (flat binary, ELF32/ELF64 executable, multiboot v1 kernel, PVH ELF\n"
	      "or Linux bzImage) in a KVM VM. `hvmm lab` lists the labs: guests that show\n"
	      "a mechanism of hardware-assisted virtualization working, with numbers.\n"
	      "\n"
	      "Options:\n"
	      "  -m, --mem SIZE          guest RAM, e.g. 128M, 2G (default 128M; 1M..64G)\n"
	      "  -c, --cpus N            number of vCPUs (default 1; 1..64)\n"
	      "      --cmdline STR       kernel command line (multiboot)\n"
	      "      --boot FORMAT       auto|flat|elf|multiboot|linux|pvh (default auto: detected;\n"
	      "                          a vmlinux boots through PVH, or --boot linux)\n"
	      "      --kernel FILE       the image, as QEMU spells it (instead of IMAGE)\n"
	      "      --initrd FILE       Linux initial ramdisk\n"
	      "      --no-decompress     boot a bzImage through its own decompressor instead of\n"
	      "                          decompressing its payload on the host\n"
	      "      --module FILE[,ARGS]  multiboot module (repeatable)\n"
	      "      --serial WHERE      stdio|none|FILE: COM1 output (default stdio)\n"
	      "      --serial-limit SIZE at most SIZE bytes of COM1 output, then one notice and\n"
	      "                          the rest dropped (default: 1G for a FILE, none for stdio;\n"
	      "                          0 = no limit)\n"
	      "      --stats             print the exit table on stderr at the end\n"
	      "      --stats-json FILE   write exit statistics as JSON\n"
	      "      --trace-exits       one line per user-space exit on stderr\n"
	      "      --timeout SECONDS   stop the VM after SECONDS (exit status 124)\n"
	      "      --strict-io         stop on the first access no device handles\n"
	      "      --irqchip MODE      split (LAPIC in KVM, IOAPIC in hvmm; default) | kernel\n"
	      "                          | user (no irqchip in KVM: hvmm's own local APICs too)\n"
	      "      --pcpus N           with --irqchip user: at most N vCPUs in the guest at\n"
	      "                          once (hvmm's scheduler, time slices of 4 ms)\n"
	      "      --timeline FILE     with --irqchip user: every vCPU's running/ready/halted\n"
	      "                          states over the run, as an HTML page\n"
	      "      --posted-interrupts on|off\n"
	      "                          with --irqchip user: interrupts to one vCPU go through\n"
	      "                          its posted-interrupt descriptor (default on), or off:\n"
	      "                          every one delivered by hvmm into the APIC (remapped)\n"
	      "      --acpi on|off       ACPI tables (RSDP, XSDT, MADT, FADT, DSDT; default on)\n"
	      "      --halt-poll NS      how long KVM polls before a halted vCPU sleeps\n"
	      "                          (default 0: idle guests cost no host CPU; 'kvm': KVM's own)\n"
	      "      --cpu-template NAME none|minimal|no-xsave: CPUID template (default none:\n"
	      "                          what KVM supports on this host)\n"
	      "      --cpuid-mask SPEC   clear CPUID bits; SPEC is a comma list of feature names\n"
	      "                          (avx, x2apic, ...) or LEAF[.SUBLEAF]:REG:BIT (7.0:ebx:5)\n"
	      "      --cpuid-set SPEC    set CPUID bits (same SPEC); masks and sets are repeatable\n"
	      "                          and apply in order, after the template\n"
	      "      --console virtio    the console is virtio-console (hvc0) on stdin/stdout;\n"
	      "                          COM1 output still goes to --serial, COM1 gets no input\n"
	      "      --rng               virtio-rng fed by the host's getrandom()\n"
	      "      --disk PATH[,ro][,bw=RATE][,iops=N][,bw-burst=SIZE][,iops-burst=N]\n"
	      "                          virtio-blk on a raw image file (repeatable, up to 8);\n"
	      "                          bw (bytes/s, e.g. 10M) and iops cap it with token buckets\n"
	      "      --network SPEC      virtio-net: user[,hostfwd=tcp:[HADDR]:HPORT-[GADDR]:GPORT]...\n"
	      "                          [,host-loopback=on] (slirp user networking; HADDR defaults\n"
	      "                          to 127.0.0.1, the host's loopback is closed to the guest\n"
	      "                          unless host-loopback=on, max-conns=N host sockets, 256)\n"
	      "                          or tap:IFNAME (repeatable, up to 4); either with\n"
	      "                          ,tx-bw=,tx-pps=,rx-bw=,rx-pps= (+ -burst=) rate limits\n"
	      "      --device NAME       a device as QEMU's -device: pc-testdev (ports 0xe0-0xeb,\n"
	      "                          0x2000-0x2017, MMIO 0xff000000), pci-testdev (PCI\n"
	      "                          1b36:0005), hyperv-testdev (port 0x3000: SynIC routes\n"
	      "                          and connections; needs --hyperv), edu (PCI 1234:11e8,\n"
	      "                          DMA and MSI), intel-iommu[,intremap=on|off|auto][,eim=off]\n"
	      "                          (VT-d at 0xfed90000, ACPI DMAR table); repeatable.\n"
	      "                          kvm-unit-tests use them. vfio,host=DDDD:BB:DD.F: that\n"
	      "                          host function (bound to vfio-pci) passed through\n"
	      "      --hyperv            Hyper-V enlightenments: every one KVM supports here in\n"
	      "                          CPUID (QEMU's hv-passthrough), SynIC enabled\n"
	      "      --nested            the guest may run guests of its own: SVM (VMX on\n"
	      "                          Intel) in its CPUID, as this host's KVM offers it;\n"
	      "                          hidden without it\n"
	      "      --no-irqfd          device interrupts injected by hvmm (KVM_SIGNAL_MSI)\n"
	      "                          instead of posted by KVM through irqfds\n"
	      "      --no-ioeventfd      queue notifies exit to hvmm instead of being absorbed\n"
	      "                          by KVM ioeventfds\n"
	      "      --no-hlt-exits      HLT halts the host CPU in the guest instead of exiting\n"
	      "                          to KVM (KVM_CAP_X86_DISABLE_EXITS)\n"
	      "      --no-pause-exits    a spinning guest's PAUSE never exits to KVM (no\n"
	      "                          pause-loop exiting; KVM_CAP_X86_DISABLE_EXITS)\n"
	      "      --msr-filter LIST   these MSRs (0xc0000103,...; up to 16) exit to hvmm,\n"
	      "                          which reads them as 0 and drops writes\n"
	      "      --dirty-log MS      track the pages the guest writes (KVM's dirty log),\n"
	      "                          counted every MS ms into --stats-json\n"
	      "      --track-dirty-pages record the pages the guest and its devices write, for\n"
	      "                          diff snapshots (snapshot_type Diff; docs/snapshot.md)\n"
	      "      --walk ADDR         --stats-json walks this linear address through each\n"
	      "                          vCPU's page tables at the end (and always RIP)\n"
	      "      --inject EVENT@MS   inject into vCPU 0, MS ms after the guest starts:\n"
	      "                          irq:VECTOR (16-255), nmi, exception:VECTOR[:ERRCODE]\n"
	      "                          (0-31); repeatable, up to 8\n"
	      "      --api-sock PATH     serve the control API (HTTP on this unix socket, shaped\n"
	      "                          like Firecracker's: pause/resume, machine config, live\n"
	      "                          statistics; docs/api.md); PATH must not exist\n"
	      "      --id NAME           the VM's name in the API (default anonymous-instance)\n"
	      "      --metrics PATH      a line of statistics (JSON) every 60 s, on the API's\n"
	      "                          FlushMetrics and at the end, appended to PATH (a file\n"
	      "                          or a named pipe: Firecracker's metrics_path)\n"
	      "      --config-file FILE  the VM as Firecracker's JSON describes it (boot-source,\n"
	      "                          drives, network-interfaces, machine-config, entropy);\n"
	      "                          options given beside it add to it; {\"vms\": [...]}:\n"
	      "                          several VMs in this process, sharing --pcpus' slots\n"
	      "                          (docs/config-file.md)\n"
	      "      --restore STATE[,mem=FILE]\n"
	      "                          start from a snapshot (PUT /snapshot/create) instead\n"
	      "                          of an image; the VM's options come from the snapshot,\n"
	      "                          or if any is given, all of them from the command line;\n"
	      "                          FILE: its memory file if not where the state says\n"
	      "      --incoming tcp:ADDR:PORT\n"
	      "                          receive a live migration (PUT /hvmm/migrate on the\n"
	      "                          source) instead of loading an image, with the\n"
	      "                          source's options; ADDR numeric or empty (any)\n"
	      "      --seccomp on|off    a seccomp allow-list per thread " OPTIONS_SECCOMP_HELP ":\n"
	      "                          a forbidden system call stops hvmm with status 10;\n"
	      "                          off for debugging\n"
	      "  -h, --help              this text\n"
	      "  -V, --version           hvmm's version\n"
	      "\n"
	      "Exit status: 0 guest shut down or reset; odd (v<<1)|1 guest wrote v to the\n"
	      "isa-debug-exit port 0xf4; 2 usage error; 4 image or snapshot load error; 6\n"
	      "KVM/host error;\n"
	      "8 guest crash (triple fault, emulation failure, --strict-io); 10 a forbidden\n"
	      "system call (seccomp); 12 --incoming: the migration stream broke or was\n"
	      "malformed (no guest ran); 124 timeout;\n"
	      "128+N killed by signal N. Ctrl-A x on the console quits (status 0).\n",
	      f);
}

int options_bad(const char *fmt, const char *arg)
{
	char msg[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(msg, sizeof(msg), fmt, arg);
#pragma GCC diagnostic pop
	util_err("%s (see hvmm --help)", msg);
	return HVMM_EXIT_USAGE;
}

enum {
	OPT_CMDLINE = 256, OPT_BOOT, OPT_MODULE, OPT_SERIAL, OPT_STATS, OPT_STATS_JSON,
	OPT_TRACE, OPT_TIMEOUT, OPT_STRICT_IO, OPT_IRQCHIP, OPT_HALT_POLL, OPT_ACPI, OPT_KERNEL, OPT_INITRD, OPT_NO_DECOMPRESS,
	OPT_CPU_TEMPLATE, OPT_CPUID_MASK, OPT_CPUID_SET,
	OPT_CONSOLE, OPT_RNG, OPT_DISK, OPT_NETWORK, OPT_NO_IRQFD, OPT_NO_IOEVENTFD,
	OPT_DEVICE, OPT_HYPERV, OPT_NESTED, OPT_SERIAL_LIMIT, OPT_SECCOMP, OPT_NO_HLT_EXITS, OPT_NO_PAUSE_EXITS, OPT_MSR_FILTER, OPT_INJECT, OPT_WALK, OPT_DIRTY_LOG,
	OPT_API_SOCK, OPT_ID, OPT_RESTORE, OPT_METRICS, OPT_INCOMING, OPT_TRACK_DIRTY,
	OPT_POSTED, OPT_PCPUS, OPT_TIMELINE,
};

static const struct option options_table[] = {
	{ "mem", required_argument, NULL, 'm' },
	{ "cpus", required_argument, NULL, 'c' },
	{ "cmdline", required_argument, NULL, OPT_CMDLINE },
	{ "boot", required_argument, NULL, OPT_BOOT },
	{ "module", required_argument, NULL, OPT_MODULE },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "serial-limit", required_argument, NULL, OPT_SERIAL_LIMIT },
	{ "stats", no_argument, NULL, OPT_STATS },
	{ "stats-json", required_argument, NULL, OPT_STATS_JSON },
	{ "trace-exits", no_argument, NULL, OPT_TRACE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "strict-io", no_argument, NULL, OPT_STRICT_IO },
	{ "irqchip", required_argument, NULL, OPT_IRQCHIP },
	{ "posted-interrupts", required_argument, NULL, OPT_POSTED },
	{ "pcpus", required_argument, NULL, OPT_PCPUS },
	{ "timeline", required_argument, NULL, OPT_TIMELINE },
	{ "halt-poll", required_argument, NULL, OPT_HALT_POLL },
	{ "no-hlt-exits", no_argument, NULL, OPT_NO_HLT_EXITS },
	{ "no-pause-exits", no_argument, NULL, OPT_NO_PAUSE_EXITS },
	{ "msr-filter", required_argument, NULL, OPT_MSR_FILTER },
	{ "inject", required_argument, NULL, OPT_INJECT },
	{ "walk", required_argument, NULL, OPT_WALK },
	{ "dirty-log", required_argument, NULL, OPT_DIRTY_LOG },
	{ "api-sock", required_argument, NULL, OPT_API_SOCK },
	{ "id", required_argument, NULL, OPT_ID },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "incoming", required_argument, NULL, OPT_INCOMING },
	{ "track-dirty-pages", no_argument, NULL, OPT_TRACK_DIRTY },
	{ "acpi", required_argument, NULL, OPT_ACPI },
	{ "kernel", required_argument, NULL, OPT_KERNEL },
	{ "initrd", required_argument, NULL, OPT_INITRD },
	{ "no-decompress", no_argument, NULL, OPT_NO_DECOMPRESS },
	{ "cpu-template", required_argument, NULL, OPT_CPU_TEMPLATE },
	{ "cpuid-mask", required_argument, NULL, OPT_CPUID_MASK },
	{ "cpuid-set", required_argument, NULL, OPT_CPUID_SET },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "network", required_argument, NULL, OPT_NETWORK },
	{ "no-irqfd", no_argument, NULL, OPT_NO_IRQFD },
	{ "no-ioeventfd", no_argument, NULL, OPT_NO_IOEVENTFD },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "hyperv", no_argument, NULL, OPT_HYPERV },
	{ "nested", no_argument, NULL, OPT_NESTED },
	{ "seccomp", required_argument, NULL, OPT_SECCOMP },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ 0 },
};

/* intel-iommu's properties, QEMU's spelling: ",intremap=on|off|auto,eim=off". */
static int options_parse_iommu(struct vm_config *cfg, const char *props)
{
	cfg->intel_iommu = true;
	cfg->intremap = -1;
	char buf[128];
	if (strlen(props) >= sizeof(buf))
		return options_bad("--device intel-iommu: properties '%s' too long", props);
	strcpy(buf, props);
	for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
		if (strcmp(p, "intremap=on") == 0)
			cfg->intremap = 1;
		else if (strcmp(p, "intremap=off") == 0)
			cfg->intremap = 0;
		else if (strcmp(p, "intremap=auto") == 0)
			cfg->intremap = -1;
		else if (strcmp(p, "eim=off") == 0)
			; /* xAPIC-mode remapping is all hvmm has */
		else if (strcmp(p, "eim=on") == 0)
			return options_bad("--device intel-iommu: '%s' is not supported (no x2APIC-mode "
					"interrupt remapping)", p);
		else
			return options_bad("--device intel-iommu: unknown property '%s' (intremap=on|off|auto, "
					"eim=off)", p);
	}
	return 0;
}

/* "vfio,host=DDDD:BB:DD.F": a host function for VFIO (vfio.h). */
static int options_parse_vfio(struct vm_config *cfg, const char *arg)
{
	_Static_assert(sizeof(cfg->vfio) / sizeof(cfg->vfio[0]) == VFIO_MAX_DEVICES &&
			       sizeof(cfg->vfio[0]) == VFIO_BDF_LEN, "vm_config's vfio[] is vfio.h's");
	char err[160];
	if (cfg->nr_vfio == VFIO_MAX_DEVICES)
		return options_bad("--device %s: at most 4 passed-through devices", arg);
	if (vfio_parse(arg[4] ? arg + 5 : "", cfg->vfio[cfg->nr_vfio], err, sizeof(err)) < 0) {
		char line[320];
		snprintf(line, sizeof(line), "--device %s: %s", arg, err);
		return options_bad("%s", line);
	}
	for (int i = 0; i < cfg->nr_vfio; i++)
		if (strcmp(cfg->vfio[i], cfg->vfio[cfg->nr_vfio]) == 0)
			return options_bad("--device %s: that function is already passed through", arg);
	cfg->nr_vfio++;
	return 0;
}

int options_parse(int argc, char **argv, struct vm_config *cfg, bool *done, bool *preboot)
{
	uint64_t v;
	char *end;
	int c, r = 0;
	bool serial_limit_set = false;
	optind = 0; /* 0: glibc's getopt starts afresh (it may have parsed another vector) */
	opterr = 0; /* hvmm prints its own one-line errors */
	while ((c = getopt_long(argc, argv, ":m:c:hV", options_table, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (util_parse_size(optarg, &v) < 0)
				return options_bad("--mem: '%s' is not a size like 128M or 2G", optarg);
			if (v < MEM_MIN_SIZE || v > MEM_MAX_SIZE || (v & 0xfff))
				return options_bad("--mem: %s is outside 1M..64G or not a multiple of 4K", optarg);
			cfg->mem_size = v;
			break;
		case 'c':
			if (util_parse_uint(optarg, 1, VM_MAX_CPUS, &v) < 0)
				return options_bad("--cpus: '%s' is not a number from 1 to 64", optarg);
			cfg->ncpus = (int)v;
			break;
		case OPT_CMDLINE:
			cfg->cmdline = optarg;
			break;
		case OPT_BOOT:
			if (boot_format_parse(optarg, &cfg->boot) < 0)
				return options_bad("--boot: unknown format '%s' (auto|flat|elf|multiboot|linux|pvh)", optarg);
			break;
		case OPT_MODULE: {
			if (cfg->nr_modules == VM_MAX_MODULES)
				return options_bad("--module: at most 16 modules (%s)", optarg);
			struct boot_module *m = &cfg->modules[cfg->nr_modules++];
			m->path = optarg;
			char *comma = strchr(optarg, ',');
			if (comma) {
				*comma = '\0';
				m->args = comma + 1;
			}
			if (!*m->path)
				return options_bad("--module: empty file name%s", "");
			break;
		}
		case OPT_SERIAL:
			if (strcmp(optarg, "stdio") == 0) {
				cfg->serial = SERIAL_STDIO;
			} else if (strcmp(optarg, "none") == 0) {
				cfg->serial = SERIAL_NONE;
			} else if (*optarg) {
				cfg->serial = SERIAL_FILE;
				cfg->serial_path = optarg;
			} else {
				return options_bad("--serial: empty argument%s", "");
			}
			break;
		case OPT_SERIAL_LIMIT:
			if (util_parse_size(optarg, &cfg->serial_limit) < 0)
				return options_bad("--serial-limit: bad size '%s'", optarg);
			serial_limit_set = true;
			break;
		case OPT_STATS:
			cfg->stats = true;
			break;
		case OPT_STATS_JSON:
			cfg->stats_json = optarg;
			break;
		case OPT_TRACE:
			cfg->trace_exits = true;
			break;
		case OPT_TIMEOUT:
			cfg->timeout_s = strtod(optarg, &end);
			if (end == optarg || *end || !(cfg->timeout_s > 0) || cfg->timeout_s > 1e7)
				return options_bad("--timeout: '%s' is not a positive number of seconds", optarg);
			break;
		case OPT_STRICT_IO:
			cfg->strict_io = true;
			break;
		case OPT_IRQCHIP:
			if (irq_mode_parse(optarg, &cfg->irqchip) < 0)
				return options_bad("--irqchip: unknown mode '%s' (split|kernel|user)", optarg);
			break;
		case OPT_KERNEL:
			cfg->image = optarg;
			break;
		case OPT_INITRD:
			cfg->initrd = optarg;
			break;
		case OPT_NO_DECOMPRESS:
			cfg->no_decompress = true;
			break;
		case OPT_CPU_TEMPLATE:
			/* names are checked here, before any KVM work; the bits in vm_create */
			if (strcmp(optarg, "none") && strcmp(optarg, "minimal") && strcmp(optarg, "no-xsave"))
				return options_bad("--cpu-template: unknown template '%s' (none|minimal|no-xsave)",
						optarg);
			cfg->cpu_template = optarg;
			break;
		case OPT_CPUID_MASK:
		case OPT_CPUID_SET:
			if (cfg->nr_cpuid_ops == VM_MAX_CPUID_OPS)
				return options_bad("--cpuid-mask/--cpuid-set: at most 32 of them (%s)", optarg);
			cfg->cpuid_ops[cfg->nr_cpuid_ops++] = (struct vm_cpuid_op){
				.spec = optarg, .set = c == OPT_CPUID_SET };
			break;
		case OPT_TIMELINE:
			cfg->timeline = optarg;
			break;
		case OPT_PCPUS:
			if (util_parse_uint(optarg, 1, VM_MAX_CPUS, &v) < 0)
				return options_bad("--pcpus: '%s' is not a number from 1 to 64", optarg);
			cfg->pcpus = (int)v;
			break;
		case OPT_POSTED:
			if (strcmp(optarg, "on") == 0)
				cfg->posted_interrupts = 1;
			else if (strcmp(optarg, "off") == 0)
				cfg->posted_interrupts = 0;
			else
				return options_bad("--posted-interrupts: '%s' is not on or off", optarg);
			break;
		case OPT_ACPI:
			if (strcmp(optarg, "on") == 0)
				cfg->acpi = true;
			else if (strcmp(optarg, "off") == 0)
				cfg->acpi = false;
			else
				return options_bad("--acpi: '%s' is not on or off", optarg);
			break;
		case OPT_HALT_POLL:
			if (strcmp(optarg, "kvm") == 0)
				cfg->halt_poll_ns = -1;
			else if (util_parse_uint(optarg, 0, 1000000000, &v) < 0)
				return options_bad("--halt-poll: '%s' is not 0..1000000000 ns or 'kvm'", optarg);
			else
				cfg->halt_poll_ns = (int64_t)v;
			break;
		case OPT_CONSOLE:
			if (strcmp(optarg, "virtio") == 0)
				cfg->console_virtio = true;
			else if (strcmp(optarg, "serial") == 0)
				cfg->console_virtio = false;
			else
				return options_bad("--console: '%s' is not virtio or serial", optarg);
			break;
		case OPT_RNG:
			cfg->rng = true;
			break;
		case OPT_DISK: {
			if (cfg->nr_disks == VM_MAX_DISKS)
				return options_bad("--disk: at most 8 disks (%s)", optarg);
			struct vm_disk *d = &cfg->disks[cfg->nr_disks++];
			d->path = optarg;
			/* Options from the end, as long as they are options: a comma
			 * further left is part of the file's name. */
			for (char *comma; (comma = strrchr(optarg, ',')) != NULL; *comma = '\0') {
				const char *o = comma + 1;
				if (strcmp(o, "ro") == 0) {
					d->readonly = true;
				} else if (strcmp(o, "rw") != 0) {
					int k = rl_parse_opt(o, &d->rl);
					if (k == 0)
						break;
					if (k < 0)
						return options_bad("--disk: bad value in '%s' (bw and bw-burst take a size "
								"such as 10M, iops and iops-burst a count)", o);
				}
			}
			if (!*d->path)
				return options_bad("--disk: empty file name%s", "");
			if (rl_burst_without_rate(&d->rl))
				return options_bad("--disk %s: a burst needs its rate (bw= or iops=)", d->path);
			break;
		}
		case OPT_NETWORK:
			if (cfg->nr_nets == VM_MAX_NETS)
				return options_bad("--network: at most 4 interfaces (%s)", optarg);
			if (!*optarg)
				return options_bad("--network: empty argument%s", "");
			cfg->net[cfg->nr_nets++] = optarg;
			break;
		case OPT_NO_IRQFD:
			cfg->no_irqfd = true;
			break;
		case OPT_NO_IOEVENTFD:
			cfg->no_ioeventfd = true;
			break;
		case OPT_NO_HLT_EXITS:
			cfg->no_hlt_exits = true;
			break;
		case OPT_NO_PAUSE_EXITS:
			cfg->no_pause_exits = true;
			break;
		case OPT_API_SOCK:
			cfg->api_sock = optarg;
			break;
		case OPT_RESTORE: {
			/* STATE[,mem=MEMFILE]: the state file names its memory file;
			 * mem= says where it is now (moved, or shared elsewhere). */
			char *comma = strstr(optarg, ",mem=");
			if (comma) {
				*comma = 0;
				cfg->restore_mem = comma + 5;
				if (!*cfg->restore_mem)
					return options_bad("--restore: empty mem= in '%s'", optarg);
			}
			if (!*optarg)
				return options_bad("--restore: no state file given%s", "");
			cfg->restore = optarg;
			break;
		}
		case OPT_METRICS:
			if (!*optarg)
				return options_bad("--metrics: empty file name%s", "");
			cfg->metrics_path = optarg;
			break;
		case OPT_INCOMING:
			if (strncmp(optarg, "tcp:", 4) != 0)
				return options_bad("--incoming: '%s' is not tcp:ADDR:PORT", optarg);
			cfg->incoming = optarg;
			break;
		case OPT_ID:
			if (!*optarg || strlen(optarg) > 64)
				return options_bad("--id: '%s' is empty or longer than 64 characters", optarg);
			cfg->id = optarg;
			break;
		case OPT_TRACK_DIRTY:
			cfg->track_dirty_pages = true;
			break;
		case OPT_DIRTY_LOG:
			if (util_parse_uint(optarg, 10, 60000, &v) < 0)
				return options_bad("--dirty-log: '%s' is not 10..60000 ms", optarg);
			cfg->dirty_log_ms = (uint32_t)v;
			break;
		case OPT_WALK:
			errno = 0;
			cfg->walk_addr = strtoull(optarg, &end, 0);
			if (!*optarg || *end || errno || optarg[0] == '-')
				return options_bad("--walk: '%s' is not an address", optarg);
			cfg->walk_set = true;
			break;
		case OPT_INJECT: {
			char err[200];
			if (inject_parse(cfg->inject, &cfg->nr_inject, optarg, err, sizeof(err)) < 0)
				return options_bad("--inject: %s", err);
			break;
		}
		case OPT_MSR_FILTER: {
			char err[160];
			if (controls_parse_msr_filter(cfg, optarg, err, sizeof(err)) < 0)
				return options_bad("--msr-filter: %s", err);
			break;
		}
		case OPT_NESTED:
			cfg->nested = true;
			break;
		case OPT_HYPERV:
			cfg->hyperv = true;
			break;
		case OPT_SECCOMP:
			if (strcmp(optarg, "on") == 0)
				cfg->seccomp = true;
			else if (strcmp(optarg, "off") == 0)
				cfg->seccomp = false;
			else
				return options_bad("--seccomp: '%s' is not on or off", optarg);
			break;
		case OPT_DEVICE:
			if (strcmp(optarg, "pc-testdev") == 0)
				cfg->pc_testdev = true;
			else if (strcmp(optarg, "pci-testdev") == 0)
				cfg->pci_testdev = true;
			else if (strcmp(optarg, "hyperv-testdev") == 0)
				cfg->hyperv_testdev = true;
			else if (strcmp(optarg, "edu") == 0)
				cfg->edu = true;
			else if (strncmp(optarg, "intel-iommu", 11) == 0 &&
				 (optarg[11] == 0 || optarg[11] == ','))
				r = options_parse_iommu(cfg, optarg + 11);
			else if (strcmp(optarg, "vfio") == 0 || strncmp(optarg, "vfio,", 5) == 0)
				r = options_parse_vfio(cfg, optarg);
			else
				return options_bad("--device: '%s' is not pc-testdev, pci-testdev, hyperv-testdev, "
						"edu, intel-iommu or vfio,host=BDF", optarg);
			if (r)
				return r;
			break;
		case 'h':
			options_usage(stdout);
			*done = true;
			return 0;
		case 'V':
			printf("hvmm %s\n", HVMM_VERSION);
			*done = true;
			return 0;
		case ':':
			return options_bad("option '%s' needs an argument", argv[optind - 1]);
		default:
			if (optopt && optopt < 256) {
				char opt[3] = { '-', (char)optopt, 0 };
				return options_bad("unknown option '%s'", opt);
			}
			return options_bad("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc && cfg->image)
		return options_bad("both --kernel and IMAGE '%s' given", argv[optind]);
	if (cfg->incoming && cfg->restore)
		return options_bad("--incoming and --restore both given%s", "");
	/* Both read KVM's dirty log, and each read clears it for the other. */
	if (cfg->track_dirty_pages && cfg->dirty_log_ms)
		return options_bad("--track-dirty-pages and --dirty-log both take KVM's dirty log: give one%s", "");
	/* --api-sock alone: the VM is described and started through the API */
	*preboot = optind >= argc && !cfg->image && !cfg->restore && !cfg->incoming && cfg->api_sock;
	if (optind >= argc && !cfg->image && !cfg->restore && !cfg->incoming && !*preboot)
		return options_bad("no IMAGE given%s", "");
	if (optind + 1 < argc)
		return options_bad("unexpected argument '%s' after IMAGE", argv[optind + 1]);
	if (cfg->hyperv_testdev && !cfg->hyperv)
		return options_bad("--device hyperv-testdev needs --hyperv (it drives the SynIC)%s", "");
	if (!cfg->image && optind < argc)
		cfg->image = argv[optind];
	/* The device's DMA goes through the host IOMMU with guest-physical
	 * addresses; a guest IOMMU would have to be shadowed there, which hvmm
	 * does not do. Its interrupts are the vectors' irqfds. */
	if (cfg->nr_vfio && cfg->intel_iommu)
		return options_bad("--device vfio cannot be combined with --device intel-iommu (no guest "
				"IOMMU for passed-through devices)%s", "");
	if (cfg->nr_vfio && cfg->no_irqfd)
		return options_bad("--device vfio needs irqfds: the device signals them itself (drop "
				"--no-irqfd)%s", "");
	/* Scheduling vCPUs needs to know when one halts: HLT must exit to
	 * hvmm, which only its own APICs make happen. */
	if (cfg->timeline && cfg->irqchip != IRQCHIP_USER)
		return options_bad("--timeline needs --irqchip user (only hvmm's APICs see the vCPU states)%s", "");
	if (cfg->pcpus && cfg->irqchip != IRQCHIP_USER)
		return options_bad("--pcpus needs --irqchip user (with KVM's LAPIC a halted vCPU sleeps "
				"inside KVM_RUN)%s", "");
	/* Posting is what hvmm's own APICs do; KVM's LAPIC has its own. */
	if (cfg->posted_interrupts >= 0 && cfg->irqchip != IRQCHIP_USER)
		return options_bad("--posted-interrupts needs --irqchip user (KVM's in-kernel LAPIC posts "
				"by itself)%s", "");
	if (cfg->posted_interrupts < 0)
		cfg->posted_interrupts = cfg->irqchip == IRQCHIP_USER;
	/* hvmm's own APICs: no irqfds, no SynIC (both live in KVM's irqchip). */
	if (cfg->irqchip == IRQCHIP_USER && cfg->nr_vfio)
		return options_bad("--device vfio needs irqfds, which --irqchip user cannot have (use split)%s", "");
	if (cfg->irqchip == IRQCHIP_USER && cfg->hyperv)
		return options_bad("--hyperv needs KVM's in-kernel LAPIC for its SynIC (use --irqchip split)%s", "");
	/* Interrupt remapping acts on hvmm's IOAPIC (QEMU: kernel-irqchip=split),
	 * which the split irqchip and hvmm's own APICs have and KVM's does not. */
	if (cfg->intel_iommu && cfg->intremap > 0 && cfg->irqchip == IRQCHIP_KERNEL)
		return options_bad("--device intel-iommu,intremap=on needs --irqchip split or user%s", "");
	/* A log file the guest writes must not fill the host's disk: bounded
	 * unless the user says otherwise. A terminal or pipe is the reader's. */
	if (!serial_limit_set && cfg->serial == SERIAL_FILE)
		cfg->serial_limit = SERIAL_FILE_LIMIT;
	return 0;
}

void options_defaults(struct vm_config *cfg)
{
	*cfg = (struct vm_config){
		.mem_size = MIB(128),
		.ncpus = 1,
		.boot = BOOT_AUTO,
		.serial = SERIAL_STDIO,
		.irqchip = IRQCHIP_SPLIT,
		.posted_interrupts = -1, /* on with --irqchip user, else n/a */
		.acpi = true,
		.seccomp = OPTIONS_SECCOMP_DEFAULT,
	};
}

int options_check_vm_list(void)
{
	for (const struct options_vm_opt *v = options_vm_list; v->name; v++) {
		const struct option *o = options_table;
		while (o->name && strcmp(o->name, v->name) != 0)
			o++;
		if (!o->name || (o->has_arg == required_argument) != v->value)
			return -1;
	}
	return 0;
}

int options_vm_args(int argc, char **argv, char ***out, int *n)
{
	*out = NULL;
	*n = 0;
	/* getopt permutes the vector it is given and options_parse cuts
	 * values up: work on copies */
	char **cp = calloc((size_t)argc + 1, sizeof(*cp));
	char **res = calloc((size_t)argc + 1, sizeof(*res));
	int k = 0, r = 0;
	if (!cp || !res)
		goto nomem;
	for (int i = 0; i < argc; i++)
		if (!(cp[i] = strdup(argv[i])))
			goto nomem;
	int c, idx, saved_optind = optind, saved_opterr = opterr;
	optind = 0;
	opterr = 0;
	while ((idx = -1, c = getopt_long(argc, cp, ":m:c:hV", options_table, &idx)) != -1) {
		const struct option *o = NULL;
		if (idx >= 0)
			o = &options_table[idx];
		else
			for (const struct option *t = options_table; t->name && !o; t++)
				if (t->val == c && (c == 'm' || c == 'c'))
					o = t;
		if (!o || !options_vm_carried(o->name, strlen(o->name)))
			continue;
		size_t len = strlen(o->name) + 3 + (optarg ? strlen(optarg) + 1 : 0);
		char *a = malloc(len);
		if (!a)
			goto nomem_opt;
		if (o->has_arg == required_argument)
			snprintf(a, len, "--%s=%s", o->name, optarg ? optarg : "");
		else
			snprintf(a, len, "--%s", o->name);
		res[k++] = a;
	}
	optind = saved_optind;
	opterr = saved_opterr;
	options_free_args(cp, argc);
	*out = res;
	*n = k;
	return 0;
nomem_opt:
	optind = saved_optind;
	opterr = saved_opterr;
nomem:
	r = -ENOMEM;
	options_free_args(cp, argc);
	options_free_args(res, k);
	return r;
}
