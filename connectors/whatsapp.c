/* whatsapp.c - placeholder until the connector lands. */
#include "deskbridge/connector.h"

const struct db_connector db_whatsapp = {
    .name = "whatsapp",
};
