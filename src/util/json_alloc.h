/* json_alloc.h - recycling of jansson's small allocations.
 *
 * A webhook builds and frees a few hundred small jansson values (the parsed body and the
 * normalized event); with glibc's malloc and free they were a quarter of the gateway's
 * instructions.  Once installed, jansson's blocks of up to 512 bytes are kept on per-thread
 * free lists by size (at most 128 per size, about 0.6 MB per thread at worst) and handed out
 * again; larger ones go straight to malloc.  Under AddressSanitizer the lists are not used, so
 * it still sees every use after free. */
#ifndef DB_UTIL_JSON_ALLOC_H
#define DB_UTIL_JSON_ALLOC_H

/* Makes jansson allocate through the lists.  Must run before the process makes its first
 * jansson value (a value from plain malloc must not reach the lists' free); main calls it
 * first thing.  Calling it again does nothing. */
void db_json_alloc_install(void);

/* 1 when blocks are recycled (installed, and not under AddressSanitizer). */
int db_json_alloc_recycling(void);

#endif
