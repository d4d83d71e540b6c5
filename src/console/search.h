/* search.h - finding conversations by customer name, conversation id or the words of their
 * messages, from an index kept in Redis as messages are stored.
 *
 * A consumer group of its own on P:events (deskbridge-search, from the start of the stream,
 * so history is indexed too) reads every message and edit and adds its conversation to one
 * sorted set per word and account, P:search:<platform:account>:<word>, scored by the
 * message's time: the words of the text, of the customer's name and username (and their
 * beginnings, so "tar" finds Taras) and the chat id.  Each set keeps the newest
 * DB_SEARCH_PER_WORD conversations, so the index stays bounded by words x that.  One script
 * run indexes a whole read and acknowledges it (console_index.lua).  A query intersects the
 * sets of its words within each account of the caller's tenant, in Redis, and never scans
 * the messages.  Words are cut at anything that is not a letter or a digit and lowered for
 * ASCII, Latin-1, Latin Extended-A (Polish) and Cyrillic (Ukrainian), and are 2 to 40 bytes. */
#ifndef DB_CONSOLE_SEARCH_H
#define DB_CONSOLE_SEARCH_H

#include <stddef.h>

#include "deskbridge/status.h"

struct db_services;
struct db_search;

#define DB_SEARCH_GROUP "deskbridge-search"
#define DB_SEARCH_PER_WORD 1000
#define DB_SEARCH_MAX_QUERY_WORDS 8

/* Calls add(word, len, arg) for every word of text (lowered, 2 to 40 bytes; longer ones are
 * cut on a character boundary), in order, repeats included.  With prefixes, also every
 * beginning of 2 characters or more of each word. */
void db_search_words(const char *text, int prefixes,
                     void (*add)(const char *word, size_t len, void *arg), void *arg);

/* Starts indexing P:events for svc (roles that dispatch).  DB_OK or an error in e. */
int db_search_start(struct db_services *svc, struct db_search **out, struct db_err *e)
    DB_MUST_CHECK;
void db_search_stop_reading(struct db_search *s);
unsigned long db_search_inflight(const struct db_search *s);
void db_search_free(struct db_search *s); /* NULL-safe */

#endif
