/* cli.h - operator commands of the deskbridge binary.  Each returns the process exit
 * status (0 ok, 1 failure, 2 bad usage) and prints to out; errors go to stderr. */
#ifndef DB_CLI_H
#define DB_CLI_H

#include <stdio.h>

#include "conf/config.h"

/* `deskbridge accounts`: every account, how it receives updates, and its webhook path. */
int db_cli_accounts(const struct db_config *cfg, FILE *out);
/* `deskbridge tail [--from-start]`: prints P:events and P:status live, one line an entry,
 * until SIGINT/SIGTERM. */
int db_cli_tail(const struct db_config *cfg, int from_start, FILE *out);
/* `deskbridge reply CONVERSATION TEXT`: queues TEXT on the outbox as an agent would and
 * prints its id. */
int db_cli_reply(const struct db_config *cfg, const char *conversation, const char *text,
                 FILE *out);

/* `deskbridge agent invite ID [--supervisor]`: prints a one-time sign-in link to the agent
 * console for agent ID (docs/console.md). */
int db_cli_agent_invite(const struct db_config *cfg, const char *agent, int supervisor,
                        FILE *out);

#endif
