/*
 * config_file: Firecracker's VM description as hvmm options (config_file.h).
 *
 * The mapping, section by section (Firecracker's names):
 *   machine-config   vcpu_count → --cpus, mem_size_mib → --mem NM,
 *                    track_dirty_pages → --track-dirty-pages, smt must be false,
 *                    huge_pages "None" only, cpu_template → --cpu-template
 *   boot-source      kernel_image_path → --kernel, boot_args → --cmdline,
 *                    initrd_path → --initrd
 *   drives[]         path_on_host (+ is_read_only) → --disk PATH[,ro], in the
 *                    file's order but the root device first (it is vda, as
 *                    Firecracker makes it), and "root=/dev/vda rw|ro" appended
 *                    to the command line as Firecracker appends it;
 *                    rate_limiter → bw=/iops= (and their bursts)
 *   network-interfaces[]  host_dev_name → --network tap:NAME, guest_mac →
 *                    mac=, rx_/tx_rate_limiter → rx-/tx-bw= and -pps=
 *   entropy          → --rng
 *   metrics          metrics_path → --metrics
 * A Firecracker rate limiter's bucket holds `size` tokens refilled every
 * `refill_time` ms; hvmm's holds a second's worth, so the rate is
 * size × 1000 / refill_time per second, and one_time_burst is the burst.
 *   hvmm-options     hvmm's own options, each one string "--NAME[=VALUE]",
 *                    for what Firecracker's schema has no words for
 * {"vms": [D, D, ...]} describes several VMs for one hvmm process, each D
 * one VM's description as above.
 * Anything else — an unknown key, a section hvmm does not have (vsock,
 * balloon, mmds-config, logger, metrics, cpu-config), a wrong type — is an
 * error naming it: a description that is half applied is worse than none.
 */
#include "config_file.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_MAX_ARGS 256

struct config_out {
	char **argv;
	int argc;
	char *err;
	size_t n;
	bool failed;
};

static int config_fail(struct config_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int config_fail(struct config_out *o, const char *fmt, ...)
{
	if (!o->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(o->err, o->n, fmt, ap);
		va_end(ap);
	}
	o->failed = true;
	return -1;
}

static int config_add(struct config_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int config_add(struct config_out *o, const char *fmt, ...)
{
	if (o->failed)
		return -1;
	if (o->argc + 2 > CONFIG_MAX_ARGS)
		return config_fail(o, "the description has more than %d settings", CONFIG_MAX_ARGS / 2);
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	char **a = r < 0 ? NULL : realloc(o->argv, (size_t)(o->argc + 2) * sizeof(*a));
	if (!a) {
		if (r >= 0)
			free(s);
		return config_fail(o, "out of memory");
	}
	o->argv = a;
	a[o->argc++] = s;
	a[o->argc] = NULL;
	return 0;
}

/* Every key of obj must be in known (NULL-terminated). */
static int config_keys(struct config_out *o, json_object *obj, const char *where, const char *const *known)
{
	json_object_object_foreach(obj, key, val) {
		(void)val;
		bool ok = false;
		for (const char *const *k = known; *k; k++)
			ok = ok || strcmp(key, *k) == 0;
		if (!ok)
			return config_fail(o, "%s: unknown field '%.64s'", where, key);
	}
	return 0;
}

static json_object *config_get(json_object *obj, const char *key)
{
	json_object *v = NULL;
	return json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

/* A field of a type, or NULL (absent; with `required`, an error). */
static json_object *config_field(struct config_out *o, json_object *obj, const char *where, const char *key,
				 enum json_type t, bool required)
{
	json_object *v = config_get(obj, key);
	if (!v) {
		if (required)
			config_fail(o, "%s: missing field '%s'", where, key);
		return NULL;
	}
	if (!json_object_is_type(v, t)) {
		static const char *const names[] = {
			[json_type_null] = "null", [json_type_boolean] = "a boolean", [json_type_double] = "a number",
			[json_type_int] = "an integer", [json_type_object] = "an object", [json_type_array] = "an array",
			[json_type_string] = "a string",
		};
		config_fail(o, "%s: field '%s' must be %s", where, key, names[t]);
		return NULL;
	}
	return v;
}

/* An integer field within [lo, hi]; *out unchanged when absent. */
static int config_int(struct config_out *o, json_object *obj, const char *where, const char *key, int64_t lo,
		      int64_t hi, bool required, int64_t *out)
{
	json_object *v = config_field(o, obj, where, key, json_type_int, required);
	if (!v)
		return o->failed ? -1 : 0;
	int64_t x = json_object_get_int64(v);
	if (x < lo || x > hi)
		return config_fail(o, "%s: field '%s' must be %lld..%lld", where, key, (long long)lo, (long long)hi);
	*out = x;
	return 1;
}

/* A string field with no comma: it becomes one option's value among
 * others in a comma-separated spec. */
static const char *config_str(struct config_out *o, json_object *obj, const char *where, const char *key,
			      bool required, bool comma_ok)
{
	json_object *v = config_field(o, obj, where, key, json_type_string, required);
	if (!v)
		return NULL;
	const char *s = json_object_get_string(v);
	if (!*s) {
		config_fail(o, "%s: field '%s' is empty", where, key);
		return NULL;
	}
	if (!comma_ok && strchr(s, ',')) {
		config_fail(o, "%s: field '%s' may not contain a comma", where, key);
		return NULL;
	}
	return s;
}

/* Firecracker's TokenBucket as ",NAME=RATE,NAME-burst=N" options. */
static int config_bucket(struct config_out *o, json_object *rl, const char *where, const char *key,
			 const char *name, char *spec, size_t len)
{
	json_object *b = config_field(o, rl, where, key, json_type_object, false);
	if (!b)
		return o->failed ? -1 : 0;
	char w[96];
	snprintf(w, sizeof(w), "%s.%s", where, key);
	static const char *const known[] = { "size", "one_time_burst", "refill_time", NULL };
	int64_t size = 0, burst = 0, refill = 0;
	if (config_keys(o, b, w, known) < 0 ||
	    config_int(o, b, w, "size", 1, INT64_MAX / 1000, true, &size) < 0 ||
	    config_int(o, b, w, "refill_time", 1, 3600000, true, &refill) < 0 ||
	    config_int(o, b, w, "one_time_burst", 0, INT64_MAX, false, &burst) < 0)
		return -1;
	int64_t rate = size * 1000 / refill;
	if (rate < 1)
		return config_fail(o, "%s: %lld per %lld ms is less than 1 per second", w, (long long)size,
				   (long long)refill);
	size_t used = strlen(spec);
	if (burst)
		snprintf(spec + used, len - used, ",%s=%lld,%s-burst=%lld", name, (long long)rate, name,
			 (long long)burst);
	else
		snprintf(spec + used, len - used, ",%s=%lld", name, (long long)rate);
	return 0;
}

/* A rate_limiter object: bandwidth (bytes) and ops (requests or frames). */
static int config_limiter(struct config_out *o, json_object *obj, const char *where, const char *key,
			  const char *bytes_name, const char *ops_name, char *spec, size_t len)
{
	json_object *rl = config_field(o, obj, where, key, json_type_object, false);
	if (!rl)
		return o->failed ? -1 : 0;
	char w[80];
	snprintf(w, sizeof(w), "%s.%s", where, key);
	static const char *const known[] = { "bandwidth", "ops", NULL };
	if (config_keys(o, rl, w, known) < 0 ||
	    config_bucket(o, rl, w, "bandwidth", bytes_name, spec, len) < 0 ||
	    config_bucket(o, rl, w, "ops", ops_name, spec, len) < 0)
		return -1;
	return 0;
}

static int config_machine(struct config_out *o, json_object *m, bool *dirty)
{
	static const char *const known[] = { "vcpu_count", "mem_size_mib", "smt", "track_dirty_pages",
					     "cpu_template", "huge_pages", NULL };
	const char *w = "machine-config";
	if (!json_object_is_type(m, json_type_object))
		return config_fail(o, "machine-config must be an object");
	int64_t cpus = 0, mib = 0;
	if (config_keys(o, m, w, known) < 0 || config_int(o, m, w, "vcpu_count", 1, 64, true, &cpus) < 0 ||
	    config_int(o, m, w, "mem_size_mib", 1, 65536, true, &mib) < 0)
		return -1;
	json_object *smt = config_field(o, m, w, "smt", json_type_boolean, false);
	if (o->failed)
		return -1;
	if (smt && json_object_get_boolean(smt))
		return config_fail(o, "machine-config: smt true is not supported by hvmm (one thread per core)");
	json_object *td = config_field(o, m, w, "track_dirty_pages", json_type_boolean, false);
	if (o->failed)
		return -1;
	*dirty = td && json_object_get_boolean(td);
	const char *hp = config_str(o, m, w, "huge_pages", false, false);
	if (o->failed)
		return -1;
	if (hp && strcmp(hp, "None") != 0)
		return config_fail(o, "machine-config: huge_pages \"%s\" is not supported by hvmm (\"None\")", hp);
	const char *tmpl = config_str(o, m, w, "cpu_template", false, false);
	if (o->failed)
		return -1;
	config_add(o, "--cpus=%lld", (long long)cpus);
	config_add(o, "--mem=%lldM", (long long)mib);
	if (tmpl && strcmp(tmpl, "None") != 0)
		config_add(o, "--cpu-template=%s", tmpl);
	return o->failed ? -1 : 0;
}

static int config_drives(struct config_out *o, json_object *d, char *root_arg, size_t root_len)
{
	if (!json_object_is_type(d, json_type_array))
		return config_fail(o, "drives must be an array");
	size_t n = json_object_array_length(d);
	/* the root device first: it is vda */
	int root = -1;
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(d, i);
			char w[48];
			snprintf(w, sizeof(w), "drives[%zu]", i);
			if (!json_object_is_type(e, json_type_object))
				return config_fail(o, "%s must be an object", w);
			json_object *isroot = config_field(o, e, w, "is_root_device", json_type_boolean, true);
			if (o->failed)
				return -1;
			bool r = json_object_get_boolean(isroot);
			if (pass == 0 && r) {
				if (root >= 0)
					return config_fail(o, "drives[%d] and %s are both the root device", root, w);
				root = (int)i;
			}
			if ((pass == 0) != r)
				continue;
			static const char *const known[] = { "drive_id", "path_on_host", "is_root_device", "is_read_only",
							     "partuuid", "cache_type", "rate_limiter", "io_engine", NULL };
			if (config_keys(o, e, w, known) < 0 || !config_str(o, e, w, "drive_id", true, true))
				return -1;
			const char *path = config_str(o, e, w, "path_on_host", true, true);
			json_object *ro = config_field(o, e, w, "is_read_only", json_type_boolean, false);
			const char *part = config_str(o, e, w, "partuuid", false, true);
			const char *cache = config_str(o, e, w, "cache_type", false, false);
			const char *engine = config_str(o, e, w, "io_engine", false, false);
			if (o->failed)
				return -1;
			if (part)
				return config_fail(o, "%s: partuuid is not supported by hvmm (the root is the whole vda)", w);
			/* hvmm's disks are write-through (Firecracker's Writeback
			 * flushes on the guest's FLUSH: hvmm does too) and io_uring
			 * with a synchronous fall-back, whatever these say */
			if (cache && strcmp(cache, "Unsafe") != 0 && strcmp(cache, "Writeback") != 0)
				return config_fail(o, "%s: cache_type must be \"Unsafe\" or \"Writeback\"", w);
			if (engine && strcmp(engine, "Sync") != 0 && strcmp(engine, "Async") != 0)
				return config_fail(o, "%s: io_engine must be \"Sync\" or \"Async\"", w);
			bool readonly = ro && json_object_get_boolean(ro);
			char spec[256] = "";
			if (config_limiter(o, e, w, "rate_limiter", "bw", "iops", spec, sizeof(spec)) < 0)
				return -1;
			config_add(o, "--disk=%s%s%s", path, readonly ? ",ro" : "", spec);
			if (r)
				snprintf(root_arg, root_len, "root=/dev/vda %s", readonly ? "ro" : "rw");
		}
	}
	return o->failed ? -1 : 0;
}

static int config_nets(struct config_out *o, json_object *d)
{
	if (!json_object_is_type(d, json_type_array))
		return config_fail(o, "network-interfaces must be an array");
	for (size_t i = 0; i < json_object_array_length(d); i++) {
		json_object *e = json_object_array_get_idx(d, i);
		char w[48];
		snprintf(w, sizeof(w), "network-interfaces[%zu]", i);
		if (!json_object_is_type(e, json_type_object))
			return config_fail(o, "%s must be an object", w);
		static const char *const known[] = { "iface_id", "host_dev_name", "guest_mac", "rx_rate_limiter",
						     "tx_rate_limiter", NULL };
		if (config_keys(o, e, w, known) < 0 || !config_str(o, e, w, "iface_id", true, true))
			return -1;
		const char *dev = config_str(o, e, w, "host_dev_name", true, false);
		const char *mac = config_str(o, e, w, "guest_mac", false, false);
		if (o->failed)
			return -1;
		char spec[256] = "";
		if (mac)
			snprintf(spec, sizeof(spec), ",mac=%s", mac);
		if (config_limiter(o, e, w, "rx_rate_limiter", "rx-bw", "rx-pps", spec, sizeof(spec)) < 0 ||
		    config_limiter(o, e, w, "tx_rate_limiter", "tx-bw", "tx-pps", spec, sizeof(spec)) < 0)
			return -1;
		config_add(o, "--network=tap:%s%s", dev, spec);
	}
	return o->failed ? -1 : 0;
}

/* hvmm's own options in a description: strings "--NAME" or "--NAME=VALUE",
 * added as given (the parser checks them like the command line's). */
static void config_hvmm_options(struct config_out *o, json_object *a)
{
	if (!json_object_is_type(a, json_type_array)) {
		config_fail(o, "hvmm-options must be an array of strings");
		return;
	}
	size_t n = json_object_array_length(a);
	for (size_t i = 0; i < n && !o->failed; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		const char *v = json_object_is_type(e, json_type_string) ? json_object_get_string(e) : NULL;
		if (!v || strncmp(v, "--", 2) != 0 || !v[2])
			config_fail(o, "hvmm-options[%zu]: want an option as one string, \"--NAME\" or \"--NAME=VALUE\"", i);
		else if (strncmp(v, "--config-file", 13) == 0)
			config_fail(o, "hvmm-options[%zu]: --config-file inside a description", i);
		else
			config_add(o, "%s", v);
	}
}

/* One VM's description (Firecracker's sections and hvmm-options). */
static void config_vm(struct config_out *o, json_object *root)
{
	static const char *const known[] = { "boot-source", "drives", "network-interfaces", "machine-config",
					     "entropy", "metrics", "hvmm-options", NULL };
	static const char *const firecracker_only[] = { "vsock", "balloon", "mmds-config", "logger",
							"cpu-config", NULL };
	json_object_object_foreach(root, key, val) {
		(void)val;
		for (const char *const *k = firecracker_only; *k; k++)
			if (strcmp(key, *k) == 0)
				config_fail(o, "%s is not supported by hvmm", key);
	}
	char root_arg[32] = "";
	bool dirty = false;
	json_object *m = config_get(root, "machine-config");
	json_object *boot = config_get(root, "boot-source");
	json_object *d = config_get(root, "drives");
	json_object *net = config_get(root, "network-interfaces");
	json_object *ent = config_get(root, "entropy");
	if (!o->failed && config_keys(o, root, "the description", known) == 0 && m)
		config_machine(o, m, &dirty);
	if (!o->failed && dirty)
		config_add(o, "--track-dirty-pages");
	if (!o->failed && d)
		config_drives(o, d, root_arg, sizeof(root_arg));
	if (!o->failed && net)
		config_nets(o, net);
	if (!o->failed && ent) {
		static const char *const ek[] = { "rate_limiter", NULL };
		if (!json_object_is_type(ent, json_type_object))
			config_fail(o, "entropy must be an object");
		else if (config_keys(o, ent, "entropy", ek) == 0 && config_get(ent, "rate_limiter"))
			config_fail(o, "entropy: rate_limiter is not supported by hvmm");
		else
			config_add(o, "--rng");
	}
	json_object *met = config_get(root, "metrics");
	if (!o->failed && met) {
		static const char *const mk[] = { "metrics_path", NULL };
		if (!json_object_is_type(met, json_type_object)) {
			config_fail(o, "metrics must be an object");
		} else if (config_keys(o, met, "metrics", mk) == 0) {
			const char *mp = config_str(o, met, "metrics", "metrics_path", true, true);
			if (mp)
				config_add(o, "--metrics=%s", mp);
		}
	}
	if (!o->failed && boot) {
		static const char *const bk[] = { "kernel_image_path", "boot_args", "initrd_path", NULL };
		const char *w = "boot-source";
		if (!json_object_is_type(boot, json_type_object)) {
			config_fail(o, "boot-source must be an object");
		} else if (config_keys(o, boot, w, bk) == 0) {
			const char *k = config_str(o, boot, w, "kernel_image_path", true, true);
			const char *args = config_str(o, boot, w, "boot_args", false, true);
			const char *initrd = config_str(o, boot, w, "initrd_path", false, true);
			if (!o->failed) {
				config_add(o, "--kernel=%s", k);
				if (initrd)
					config_add(o, "--initrd=%s", initrd);
				if (args || root_arg[0])
					config_add(o, "--cmdline=%s%s%s", args ? args : "", args && root_arg[0] ? " " : "",
						   root_arg);
			}
		}
	}
	json_object *hv = config_get(root, "hvmm-options");
	if (!o->failed && hv)
		config_hvmm_options(o, hv);
}

json_object *config_json_object(const char *text, size_t len, enum config_json_err *e, const char **detail)
{
	*detail = "";
	json_tokener *tok = json_tokener_new();
	if (!tok) {
		*e = CONFIG_JSON_NOMEM;
		return NULL;
	}
	json_object *root = len > INT32_MAX ? NULL : json_tokener_parse_ex(tok, text, (int)len);
	enum json_tokener_error je = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	while (root && used < len && strchr(" \t\r\n", text[used]))
		used++;
	if (!root || je != json_tokener_success || used != len) {
		/* json-c's reason when it has one; none for text after the value */
		if (!root && je != json_tokener_success)
			*detail = json_tokener_error_desc(je);
		json_object_put(root);
		*e = CONFIG_JSON_BAD;
		return NULL;
	}
	if (!json_object_is_type(root, json_type_object)) {
		json_object_put(root);
		*e = CONFIG_JSON_NOT_OBJECT;
		return NULL;
	}
	*e = CONFIG_JSON_OK;
	return root;
}

/* The JSON text as an object, or NULL with the reason in o. */
static json_object *config_root(struct config_out *o, const char *json, size_t len)
{
	enum config_json_err e = CONFIG_JSON_BAD;
	const char *why = "";
	json_object *root = len > CONFIG_FILE_MAX ? NULL : config_json_object(json, len, &e, &why);
	if (e == CONFIG_JSON_NOMEM)
		config_fail(o, "out of memory");
	else if (e == CONFIG_JSON_BAD)
		config_fail(o, "not valid JSON%s%s", why[0] ? ": " : "", why);
	else if (e == CONFIG_JSON_NOT_OBJECT)
		config_fail(o, "the description must be a JSON object");
	return root;
}

int config_file_parse(const char *json, size_t len, char ***argv, int *argc, char *err, size_t n)
{
	struct config_out o = { .argv = *argv, .argc = *argc, .err = err, .n = n };
	json_object *root = config_root(&o, json, len);
	if (root && config_get(root, "vms"))
		config_fail(&o, "vms: a description of several VMs is for --config-file only");
	else if (root)
		config_vm(&o, root);
	json_object_put(root);
	*argv = o.argv;
	*argc = o.argc;
	return o.failed ? -1 : 0;
}

int config_file_parse_vms(const char *json, size_t len, struct config_vms *out, char *err, size_t n)
{
	memset(out, 0, sizeof(*out));
	struct config_out o = { .err = err, .n = n };
	json_object *root = config_root(&o, json, len);
	json_object *vms = root ? config_get(root, "vms") : NULL;
	if (!root) {
		return -1;
	} else if (!vms) {
		/* one VM, the plain description */
		config_vm(&o, root);
		out->n = 1;
		out->argv[0] = o.argv;
		out->argc[0] = o.argc;
	} else {
		static const char *const known[] = { "vms", NULL };
		size_t nv = json_object_is_type(vms, json_type_array) ? json_object_array_length(vms) : 0;
		out->multi = true;
		if (config_keys(&o, root, "a description of several VMs", known) < 0) {
			/* named */
		} else if (!json_object_is_type(vms, json_type_array) || nv < 1 || nv > CONFIG_VMS_MAX) {
			config_fail(&o, "vms must be an array of 1 to %d VM descriptions", CONFIG_VMS_MAX);
		} else {
			for (size_t i = 0; i < nv && !o.failed; i++) {
				json_object *e = json_object_array_get_idx(vms, i);
				struct config_out one = { .err = err, .n = n };
				if (!json_object_is_type(e, json_type_object))
					config_fail(&one, "must be an object");
				else
					config_vm(&one, e);
				out->argv[i] = one.argv;
				out->argc[i] = one.argc;
				out->n = (int)i + 1;
				if (one.failed) {
					/* the VM's place in front of its own reason */
					char why[256];
					snprintf(why, sizeof(why), "%s", err);
					config_fail(&o, "vms[%zu]: %s", i, why);
				}
			}
		}
	}
	json_object_put(root);
	return o.failed ? -1 : 0;
}

void config_file_free_vms(struct config_vms *v)
{
	for (int i = 0; i < v->n; i++)
		config_file_free(v->argv[i], v->argc[i]);
	memset(v, 0, sizeof(*v));
}

void config_file_free(char **argv, int argc)
{
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	free(argv);
}
