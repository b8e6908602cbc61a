/*
 * snapshot: the payload buffers and the snapshot state's tear-down (see
 * snapshot.h); the devices it saves are the device registry's
 * (src/devices/registry.c).
 * The file format is snapshot_file.c's, the vCPU and KVM state
 * snapshot_kvm.c's, the create and restore flows snapshot_vm.c's.
 */
#include "snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapshot_priv.h"
#include "vm.h"

void snap_put(struct snap_buf *b, const void *p, size_t len)
{
	if (b->failed || !len)
		return;
	if (b->len + len < b->len) {
		b->failed = true;
		return;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len)
			cap *= 2;
		uint8_t *d = realloc(b->data, cap);
		if (!d) {
			b->failed = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
}

void snap_buf_free(struct snap_buf *b)
{
	free(b->data);
	*b = (struct snap_buf){ 0 };
}

void snap_get(struct snap_cur *c, void *dst, size_t len)
{
	if (c->bad || len > c->left) {
		memset(dst, 0, len);
		c->bad = true;
		c->left = 0;
		return;
	}
	memcpy(dst, c->p, len);
	c->p += len;
	c->left -= len;
}

int snapshot_restore_peek(struct vm *vm, const char *name, struct snap_cur *c, uint32_t *version)
{
	struct snapshot_reg *r = vm->snap;
	if (!r || !r->restore)
		return -ENOENT;
	uint32_t inst = 0;
	for (int i = 0; i < vm->devs.nr; i++)
		if (!strcmp(vm->devs.v[i].ops->name, name))
			inst++;
	return snap_reader_find(r->restore, name, inst, c, version);
}

bool snapshot_to_files(struct vm *vm)
{
	return vm->snap && vm->snap->to_files;
}

void snapshot_registry_free(struct vm *vm)
{
	if (!vm->snap)
		return;
	if (vm->snap->restore) {
		snap_reader_close(vm->snap->restore);
		free(vm->snap->restore);
	}
	free(vm->snap->dirty);
	free(vm->snap);
	vm->snap = NULL;
}

int snapshot_roundtrip(const struct snap_ops *ops, void *a, void *b, char *err, size_t n)
{
	struct snap_buf s1 = { 0 }, s2 = { 0 };
	int r = -1;
	if (ops->save(a, &s1, err, n) < 0)
		goto out;
	if (s1.failed) {
		snprintf(err, n, "%s: save: out of memory", ops->name);
		goto out;
	}
	struct snap_cur c = { .p = s1.data, .left = s1.len };
	if (ops->load(b, &c, ops->version, err, n) < 0)
		goto out;
	if (c.bad || c.left) {
		snprintf(err, n, "%s: load read %s the %zu bytes saved", ops->name,
			 c.bad ? "past the end of" : "less than", s1.len);
		goto out;
	}
	if (ops->save(b, &s2, err, n) < 0)
		goto out;
	if (s1.len != s2.len) {
		snprintf(err, n, "%s: saved %zu bytes, %zu after the load", ops->name, s1.len, s2.len);
		goto out;
	}
	for (size_t i = 0; i < s1.len; i++) {
		if (s1.data[i] != s2.data[i]) {
			snprintf(err, n, "%s: byte %zu differs after the load: 0x%02x, was 0x%02x", ops->name, i,
				 s2.data[i], s1.data[i]);
			goto out;
		}
	}
	r = 0;
out:
	snap_buf_free(&s1);
	snap_buf_free(&s2);
	return r;
}
