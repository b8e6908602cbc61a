/* nop: the smallest x86-64 program (exit(0) at once). `timeit -- nop` shows the
 * floor that timeit itself adds to a child's ru_maxrss and wall time. */
	.globl _start
	.text
_start:
	mov $60, %eax
	xor %edi, %edi
	syscall
