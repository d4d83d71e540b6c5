#include "net/netcheck.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Host-order IPv4 address a.b.c.d as one number. */
static int v4_is_private(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
    } blocked[] = {
        {0x00000000u, 0xff000000u}, /* 0/8 "this network", includes 0.0.0.0 */
        {0x0a000000u, 0xff000000u}, /* 10/8 */
        {0x64400000u, 0xffc00000u}, /* 100.64/10 CGNAT */
        {0x7f000000u, 0xff000000u}, /* 127/8 loopback */
        {0xa9fe0000u, 0xffff0000u}, /* 169.254/16 link-local, cloud metadata lives here */
        {0xac100000u, 0xfff00000u}, /* 172.16/12 */
        {0xc0a80000u, 0xffff0000u}, /* 192.168/16 */
        {0xe0000000u, 0xf0000000u}, /* 224/4 multicast */
        {0xf0000000u, 0xf0000000u}, /* 240/4 reserved + broadcast */
    };
    for (size_t i = 0; i < sizeof blocked / sizeof blocked[0]; i++)
        if ((a & blocked[i].mask) == blocked[i].net) return 1;
    return 0;
}

static uint32_t v4_from_bytes(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static int v6_is_private(const unsigned char *b)
{
    static const unsigned char zero12[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0x00, 0x64, 0xff, 0x9b};

    /* Forms that carry an IPv4 address in the last 4 bytes are judged by that address, so
     * ::ffff:127.0.0.1 is as loopback as 127.0.0.1.  ::/96 also covers :: and ::1 because
     * 0.0.0.0 and 0.0.0.1 fall in 0/8. */
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, zero12, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_is_private(v4_from_bytes(b + 12));
    if (b[0] == 0xff) return 1;                         /* ff00::/8 multicast */
    if ((b[0] & 0xfe) == 0xfc) return 1;                /* fc00::/7 ULA */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return 1; /* fe80::/10 link-local */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return 1; /* fec0::/10 old site-local */
    return 0;
}

int db_http_addr_is_private(const struct sockaddr *sa)
{
    if (!sa) return 1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return v4_is_private(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        return v6_is_private(in6->sin6_addr.s6_addr);
    }
    return 1;
}

/* The address literal host (IPv6 with or without brackets) into ss with port; -1 when host
 * is not an address literal (a name, an IPv6 zone id, anything else). */
static int literal(const char *host, size_t n, int port, struct sockaddr_storage *ss)
{
    char buf[INET6_ADDRSTRLEN + 2];
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') host++, n -= 2;
    if (n == 0 || n >= sizeof buf) return -1;
    memcpy(buf, host, n);
    buf[n] = '\0';
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
    if (inet_pton(AF_INET, buf, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return -1;
}

int db_http_allow_parse(const char *spec, struct db_http_allow *out)
{
    if (!spec || !out) return -1;
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec) return -1;
    /* An IPv6 address needs its brackets, or its last group would pass for the port. */
    if (memchr(spec, ':', (size_t)(colon - spec)) && spec[0] != '[') return -1;
    const char *p = colon + 1;
    if (*p < '1' || *p > '9' || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p)) return -1;
    long port = strtol(p, NULL, 10);
    if (port > 65535) return -1;
    struct db_http_allow a = {.port = (int)port};
    if (literal(spec, (size_t)(colon - spec), (int)port, &a.sa) != 0) return -1;
    /* Loopback only: the exception is for a test's own servers, never a network. */
    if (a.sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&a.sa;
        if ((ntohl(in->sin_addr.s_addr) & 0xff000000u) != 0x7f000000u) return -1;
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&a.sa;
        if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return -1;
    }
    *out = a;
    return 0;
}

int db_http_allow_matches(const struct db_http_allow *a, const struct sockaddr *sa)
{
    if (!a || !sa || sa->sa_family != a->sa.ss_family) return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)(const void *)sa;
        const struct sockaddr_in *y = (const struct sockaddr_in *)(const void *)&a->sa;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)(const void *)sa;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)(const void *)&a->sa;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return 0;
}

int db_http_allow_names(const struct db_http_allow *a, const char *host, long port)
{
    struct sockaddr_storage ss;
    if (!a || !host || port < 1 || port > 65535 ||
        literal(host, strlen(host), (int)port, &ss) != 0)
        return 0;
    return db_http_allow_matches(a, (const struct sockaddr *)&ss);
}
