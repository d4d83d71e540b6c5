#include "util/json_alloc.h"

#include <stdlib.h>

#include <jansson.h>

#if defined(__SANITIZE_ADDRESS__)
#define DB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DB_ASAN 1
#endif
#endif
#ifndef DB_ASAN
#define DB_ASAN 0
#endif

enum { STEP = 32, CLASSES = 16, KEEP = 128, LARGE = CLASSES };

/* Every block starts with its size class; 16 bytes keep the payload aligned as malloc's. */
struct header {
    size_t cls;
    size_t unused;
};

struct free_block {
    struct free_block *next;
};

static _Thread_local struct {
    struct free_block *head[CLASSES];
    unsigned count[CLASSES];
} lists;

static int installed;

static void *recycled_malloc(size_t size)
{
    size_t cls = size > STEP * CLASSES ? LARGE : (size ? (size - 1) / STEP : 0);
    if (cls != LARGE && lists.head[cls]) {
        struct free_block *b = lists.head[cls];
        lists.head[cls] = b->next;
        lists.count[cls]--;
        return b;
    }
    struct header *h = malloc(sizeof *h + (cls == LARGE ? size : (cls + 1) * STEP));
    if (!h) return NULL;
    h->cls = cls;
    return h + 1;
}

static void recycled_free(void *p)
{
    if (!p) return;
    struct header *h = (struct header *)p - 1;
    size_t cls = h->cls;
    if (cls == LARGE || lists.count[cls] >= KEEP) {
        free(h);
        return;
    }
    struct free_block *b = p;
    b->next = lists.head[cls];
    lists.head[cls] = b;
    lists.count[cls]++;
}

void db_json_alloc_install(void)
{
    if (installed || DB_ASAN) return;
    json_set_alloc_funcs(recycled_malloc, recycled_free);
    installed = 1;
}

int db_json_alloc_recycling(void) { return installed; }
