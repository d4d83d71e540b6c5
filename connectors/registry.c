#include <string.h>

#include "deskbridge/connector.h"

const struct db_connector *const db_connectors[] = {&db_telegram, &db_whatsapp, &db_viber, NULL};

const struct db_connector *db_connector_find(const char *name)
{
    for (int i = 0; db_connectors[i]; i++)
        if (strcmp(db_connectors[i]->name, name) == 0) return db_connectors[i];
    return NULL;
}
