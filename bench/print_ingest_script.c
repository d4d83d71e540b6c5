/* print_ingest_script.c - writes one of the gateway's ingest scripts (src/store/store.c) to stdout,
 * so bench/redis_cost.sh measures the very scripts the gateway runs.
 *
 *   print_ingest_script          the general script (receipts, cursor)
 *   print_ingest_script plain    the one for webhooks without either */
#include <stdio.h>
#include <string.h>

#include "store/store.h"

int main(int argc, char **argv)
{
    int plain = argc > 1 && strcmp(argv[1], "plain") == 0;
    return fputs(plain ? db_store_lua_ingest_plain : db_store_lua_ingest, stdout) == EOF;
}
