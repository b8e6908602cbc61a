/* term: raw terminal mode and Ctrl-A escapes for hvmm's stdin (see term.h). */
#include "term.h"

#include <pthread.h>
#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

/* One process, one stdin: the saved terminal state is process-wide. */
static pthread_mutex_t term_lock = PTHREAD_MUTEX_INITIALIZER;
static struct termios term_saved;
static bool term_raw;
static bool term_atexit;

void term_raw_restore(void)
{
	pthread_mutex_lock(&term_lock);
	if (term_raw) {
		tcsetattr(STDIN_FILENO, TCSANOW, &term_saved);
		term_raw = false;
	}
	pthread_mutex_unlock(&term_lock);
}

void term_raw_restore_async(void)
{
	/* No lock: the caller is a signal handler about to end the process. */
	if (term_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &term_saved);
}

void term_raw_enter(void)
{
	pthread_mutex_lock(&term_lock);
	if (!term_raw && isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &term_saved) == 0) {
		struct termios t = term_saved;
		cfmakeraw(&t);
		/* Keep output processing: the guest's "\n" must still return
		 * the carriage on the user's terminal as it did before. */
		t.c_oflag = term_saved.c_oflag;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0) {
			term_raw = true;
			if (!term_atexit && atexit(term_raw_restore) == 0)
				term_atexit = true;
		}
	}
	pthread_mutex_unlock(&term_lock);
}

size_t term_escape_filter(struct term_escape *e, uint8_t *buf, size_t len, bool *quit)
{
	size_t out = 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = buf[i];
		if (e->pending) {
			e->pending = false;
			if (c == 'x' || c == 'X') {
				*quit = true;
				continue;
			}
			if (c != TERM_CTRL_A)
				continue; /* unknown escape: swallowed, as QEMU does */
		} else if (c == TERM_CTRL_A) {
			e->pending = true;
			continue;
		}
		buf[out++] = c;
	}
	return out;
}
