/*
 * registry: a VM's devices, created from dev_types in order and walked for
 * everything done to all of them (see device.h). The table of types and
 * dev_create_all are types.c's, so that a program using a few devices (a
 * unit test) links only those.
 */
#include "../device.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util.h"

void dev_ctl_stop(const struct dev_ctl *c, enum vm_stop_reason reason, int status, const char *fmt, ...)
{
	if (!c->stop)
		return;
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->stop(c->ctx, reason, status, msg);
}

int dev_registry_add(struct dev_registry *r, const struct dev_ops *ops, void *dev)
{
	if (r->nr == r->cap) {
		int cap = r->cap ? r->cap * 2 : 32;
		struct dev_inst *v = realloc(r->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->v = v;
		r->cap = cap;
	}
	/* By name: instances of one name are numbered 0, 1, … as the snapshot
	 * sections are. */
	int index = 0;
	for (int i = 0; i < r->nr; i++)
		index += !strcmp(r->v[i].ops->name, ops->name);
	r->v[r->nr++] = (struct dev_inst){ .ops = ops, .index = index, .dev = dev };
	return 0;
}

void dev_registry_unsupported(struct dev_registry *r, const char *what)
{
	if (r && !r->unsupported)
		r->unsupported = what;
}

int dev_create(const struct dev_env *env, const struct dev_ops *ops, int i, char *err, size_t n)
{
	void *dev = NULL;
	err[0] = 0;
	int r = ops->create(env, i, &dev, err, n);
	if (r == 0 && env->reg && (r = dev_registry_add(env->reg, ops, dev)) < 0 && ops->destroy)
		ops->destroy(dev);
	if (r < 0 && !err[0])
		snprintf(err, n, "creating %s: %s", ops->desc ? ops->desc : ops->name,
			 r == DEV_ERR_USAGE ? "refused" : strerror(-r));
	return r;
}

void *dev_find(const struct dev_registry *r, const char *name, int index)
{
	for (int i = 0; r && i < r->nr; i++)
		if (r->v[i].index == index && !strcmp(r->v[i].ops->name, name))
			return r->v[i].dev;
	return NULL;
}

void dev_pause_all(const struct dev_registry *r)
{
	for (int i = 0; i < r->nr; i++)
		if (r->v[i].ops->pause)
			r->v[i].ops->pause(r->v[i].dev);
}

void dev_resume_all(const struct dev_registry *r)
{
	for (int i = r->nr - 1; i >= 0; i--)
		if (r->v[i].ops->resume)
			r->v[i].ops->resume(r->v[i].dev);
}

void dev_stats_all(const struct dev_registry *r, struct json_object *obj)
{
	for (int i = 0; i < r->nr; i++) {
		const struct dev_inst *d = &r->v[i];
		if (!d->ops->stats)
			continue;
		json_object *o = json_object_new_object();
		if (!o)
			return;
		d->ops->stats(d->dev, o);
		char key[64];
		/* the first instance by its name alone: the common case reads well */
		if (d->index)
			snprintf(key, sizeof(key), "%s.%d", d->ops->name, d->index);
		else
			snprintf(key, sizeof(key), "%s", d->ops->name);
		json_object_object_add(obj, key, o);
	}
}

void dev_destroy_all(struct dev_registry *r)
{
	/* The last created first: a device may use what an earlier one set up
	 * (the PCI functions the host bridge, hyperv-testdev the SynIC). */
	for (int i = r->nr - 1; i >= 0; i--)
		if (r->v[i].ops->destroy)
			r->v[i].ops->destroy(r->v[i].dev);
	free(r->v);
	*r = (struct dev_registry){ 0 };
}
