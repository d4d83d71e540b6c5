/* netcheck.h - which peer addresses the SSRF guard refuses.
 *
 * The outbound HTTP client (http_client.c) asks this after DNS resolution, for every address
 * it is about to connect to, when its block_private option is set.  Kept apart so that the
 * rule is testable without sockets and usable by any other module that dials out. */
#ifndef DB_NETCHECK_H
#define DB_NETCHECK_H

struct sockaddr;

/* 1 when sa must not be connected to from a URL that a third party chose: loopback
 * (127/8, ::1), unspecified or "this network" (0/8, ::), RFC 1918 private (10/8, 172.16/12,
 * 192.168/16), link-local (169.254/16, fe80::/10), CGNAT (100.64/10), ULA (fc00::/7),
 * deprecated site-local (fec0::/10), multicast (224/4, ff00::/8), reserved and broadcast
 * (240/4), and any IPv6 form that embeds such an IPv4 address (IPv4-mapped ::ffff:0:0/96,
 * IPv4-compatible ::/96, NAT64 64:ff9b::/96).  0 for anything else.  Unknown families and
 * NULL count as private (refuse what we cannot judge). */
int db_http_addr_is_private(const struct sockaddr *sa);

#endif
