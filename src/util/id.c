#include "util/id.h"

#include <pthread.h>
#include <string.h>
#include <sys/time.h>

#include "util/crypto.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int64_t db_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Random bytes are drawn from the CSPRNG a block at a time: a call per id cost more than the
 * rest of the id (OpenSSL checks the process id on every call).  A forked child drops what its
 * parent had drawn, so two processes never hand out the same bytes. */
static _Thread_local struct {
    unsigned char bytes[640];
    size_t left;
} pool;
static pthread_once_t fork_hook_once = PTHREAD_ONCE_INIT;
static void drop_pool(void) { pool.left = 0; }
static void install_fork_hook(void) { pthread_atfork(NULL, NULL, drop_pool); }

static void random_bytes(unsigned char *out, size_t n)
{
    pthread_once(&fork_hook_once, install_fork_hook);
    if (pool.left < n) {
        if (db_random_bytes(pool.bytes, sizeof pool.bytes) != 0) {
            memset(out, 0, n); /* the time part still orders and mostly separates ids */
            return;
        }
        pool.left = sizeof pool.bytes;
    }
    unsigned char *p = pool.bytes + sizeof pool.bytes - pool.left;
    memcpy(out, p, n);
    memset(p, 0, n); /* handed-out bytes do not stay in memory */
    pool.left -= n;
}

void db_id_new(char out[DB_ID_LEN + 1])
{
    uint64_t ms = (uint64_t)db_now_ms();
    unsigned char rnd[10];
    random_bytes(rnd, sizeof rnd);
    /* 10 characters of time (50 bits, top 2 always zero for the next few millennia). */
    for (int i = 9; i >= 0; i--) {
        out[i] = alphabet[ms & 31];
        ms >>= 5;
    }
    /* 16 characters of randomness: 80 bits, 5 at a time. */
    int bit = 0;
    for (int i = 10; i < DB_ID_LEN; i++, bit += 5) {
        int byte = bit / 8, off = bit % 8;
        unsigned v = (unsigned)rnd[byte] << 8 | (byte + 1 < 10 ? rnd[byte + 1] : 0);
        out[i] = alphabet[(v >> (11 - off)) & 31];
    }
    out[DB_ID_LEN] = '\0';
}

int db_id_is_valid(const char *s)
{
    if (!s || strlen(s) != DB_ID_LEN) return 0;
    for (const char *p = s; *p; p++)
        if (!strchr(alphabet, *p)) return 0;
    return 1;
}
