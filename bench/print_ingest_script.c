/* print_ingest_script.c - writes the gateway's ingest script (src/store.c) to stdout, so
 * bench/redis_cost.sh measures the very script the gateway runs. */
#include <stdio.h>

#include "store.h"

int main(void)
{
    return fputs(db_store_lua_ingest, stdout) == EOF;
}
