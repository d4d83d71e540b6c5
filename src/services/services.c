#include "services/services.h"

#include <stdlib.h>

#include "conf/config.h"

struct db_cfg_ref *db_cfg_ref_new(struct db_config *cfg)
{
    struct db_cfg_ref *ref = calloc(1, sizeof *ref);
    if (!ref) {
        db_config_free(cfg);
        return NULL;
    }
    ref->cfg = cfg;
    ref->refs = 1;
    return ref;
}

struct db_cfg_ref *db_cfg_ref(struct db_services *svc)
{
    svc->cfg->refs++;
    return svc->cfg;
}

void db_cfg_unref(struct db_cfg_ref *ref)
{
    if (!ref || --ref->refs > 0) return;
    db_config_free(ref->cfg);
    free(ref);
}
