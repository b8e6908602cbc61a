/*
 * fmt: the printf core shared by the kernel (kprintf, console.c) and ring 3
 * (u_fmt, user/virtio.c): %s %c %d %i %u %x %p, l/ll, width, 0-padding.
 *
 * A static inline header rather than one function because ring-0 and ring-3
 * code live in different pages (linker.ld puts guest/user/ objects in the
 * user-accessible .utext): each side compiles its own copy into its own
 * section, from one source.
 */
#ifndef GUEST_FMT_H
#define GUEST_FMT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

typedef void (*fmt_put_fn)(void *ctx, char c);

static inline void fmt_num(fmt_put_fn put, void *ctx, uint64_t v, unsigned base, bool neg, int width,
			   char pad)
{
	char t[24];
	int n = 0;
	do {
		t[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		t[n++] = '-';
	while (width-- > n)
		put(ctx, pad);
	while (n)
		put(ctx, t[--n]);
}

static inline void fmt_vformat(fmt_put_fn put, void *ctx, const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			put(ctx, *fmt);
			continue;
		}
		fmt++;
		char pad = ' ';
		int width = 0, lng = 0;
		if (*fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			int len = 0;
			while (s[len])
				len++;
			while (width-- > len)
				put(ctx, ' ');
			while (*s)
				put(ctx, *s++);
			break;
		}
		case 'c':
			put(ctx, (char)va_arg(ap, int));
			break;
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			fmt_num(put, ctx, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
			break;
		}
		case 'u':
			fmt_num(put, ctx, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, false, width, pad);
			break;
		case 'x':
			fmt_num(put, ctx, lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, false, width, pad);
			break;
		case 'p':
			put(ctx, '0');
			put(ctx, 'x');
			fmt_num(put, ctx, (uint64_t)va_arg(ap, void *), 16, false, width, pad);
			break;
		case '%':
			put(ctx, '%');
			break;
		default:
			put(ctx, '?');
			break;
		}
	}
}

#endif
