/*
 * san-init-first.c: start the ASan runtime before any other library's
 * constructor, for integration runs of the sanitized preload library.
 *
 * A preloaded libasan initialises itself lazily, on the first call that
 * needs it, usually the first malloc.  When that call comes from a
 * library's constructor inside glibc's newlocale (libp11-kit's does, and
 * curl loads it through GnuTLS), the runtime's start-up calls dlerror(),
 * whose message goes through dcgettext, which unlocks the locale lock
 * that newlocale holds: the lock's count is broken, and the program hangs
 * in its next setlocale() (glibc 2.36, gcc 12).  Linked with
 * -z initfirst, this object's constructor runs before every other one,
 * so the runtime starts here, with no lock held.
 *
 * Preload it right after libasan and ahead of the library (README).
 */
#include <stdlib.h>

__attribute__((constructor)) static void san_init_first(void)
{
	/* volatile: the compiler must not drop the pair. */
	void *volatile p = malloc(1);

	free(p);
}
