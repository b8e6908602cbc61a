/* console: polling 16550 on COM1 (port I/O, so ring 0 only), kprintf, panic, exit. */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

void console_init(void);
void console_write(const char *s, size_t n);
/* Receive interrupts (test=serial): the handler drains the FIFO into a ring. */
void console_rx_irq(void);
void console_loopback(int on); /* MCR loopback + OUT2 (IRQ gate), IER receive */
int console_rx_pop(void);      /* -1 when empty */
extern volatile unsigned console_rx_irqs;
void kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kvprintf(const char *fmt, va_list ap);
/* Writes v to isa-debug-exit (QEMU/hvmm exit with (v << 1) | 1); halts if absent. */
__attribute__((noreturn)) void console_exit(unsigned v);
__attribute__((noreturn)) void panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
