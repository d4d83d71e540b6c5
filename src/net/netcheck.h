/* netcheck.h - which peer addresses the SSRF guard refuses.
 *
 * The outbound HTTP client (http_client.c) asks this after DNS resolution, for every address
 * it is about to connect to, when its block_private option is set.  Kept apart so that the
 * rule is testable without sockets and usable by any other module that dials out. */
#ifndef DB_NETCHECK_H
#define DB_NETCHECK_H

#include <sys/socket.h>

/* 1 when sa must not be connected to from a URL that a third party chose: loopback
 * (127/8, ::1), unspecified or "this network" (0/8, ::), RFC 1918 private (10/8, 172.16/12,
 * 192.168/16), link-local (169.254/16, fe80::/10), CGNAT (100.64/10), ULA (fc00::/7),
 * deprecated site-local (fec0::/10), multicast (224/4, ff00::/8), reserved and broadcast
 * (240/4), and any IPv6 form that embeds such an IPv4 address (IPv4-mapped ::ffff:0:0/96,
 * IPv4-compatible ::/96, NAT64 64:ff9b::/96).  0 for anything else.  Unknown families and
 * NULL count as private (refuse what we cannot judge). */
int db_http_addr_is_private(const struct sockaddr *sa);

/* A test's exception to the guard: one loopback address and port that a guarded client may
 * still reach, over plain http too, so that tests can serve the files a webhook names from a
 * fake on 127.0.0.1 (DESKBRIDGE_TEST_ALLOW_FETCH, docs/media.md).  Nothing else loosens:
 * only a URL whose host is that address literally and whose port is that port is exempt,
 * and only a connection to exactly that address and port. */
struct db_http_allow {
    struct sockaddr_storage sa; /* the address with the port */
    int port;
};

/* Parses spec, "127.0.0.1:8081" or "[::1]:8081": an IP address literal in loopback (127/8,
 * ::1) and a port from 1 to 65535, nothing else (no names, no other networks: the exception
 * must not reach anything but the machine's own test servers).  0 with *out filled, -1 when
 * spec is anything else. */
int db_http_allow_parse(const char *spec, struct db_http_allow *out);
/* 1 when sa (with its port) is exactly a's address and port; 0 otherwise, and for NULL. */
int db_http_allow_matches(const struct db_http_allow *a, const struct sockaddr *sa);
/* 1 when host (as a URL names it, an IPv6 literal with or without brackets) is a's address
 * literally and port its port; 0 for names and anything else. */
int db_http_allow_names(const struct db_http_allow *a, const char *host, long port);

#endif
