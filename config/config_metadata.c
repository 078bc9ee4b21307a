/* metadata -> a copy of metadata.filter_metadata (config/metadata_config.h). */
#include "config/metadata_config.h"

#include <errno.h>

#include "config/config_internal.h"

int cfg_parse_metadata(cfg_ctx *c, const yn_node *map, yn_node **out)
{
    static const char *const handled[] = {"filter_metadata", NULL};
    /* typed_filter_metadata holds Any messages no pilotfish filter reads */
    static const char *const ignored[] = {"typed_filter_metadata", NULL};
    static const cfg_fields f = {handled, ignored, NULL};
    const yn_node *m = cfg_get(map, "metadata");
    if (!m)
        return 0;
    size_t mark = cfg_push(c, "metadata");
    int rc = cfg_check_map(c, m, &f);
    const yn_node *fm = rc ? NULL : cfg_get(m, "filter_metadata");
    if (fm) {
        size_t m2 = cfg_push(c, "filter_metadata");
        if (fm->kind != YN_MAP)
            rc = cfg_err(c, fm, "must be a map of filter name to a struct");
        for (size_t i = 0; !rc && i < fm->n; i++) {
            const yn_node *v = fm->items[i];
            if (v->kind != YN_MAP && !yn_is_null(v)) {
                size_t m3 = cfg_push(c, fm->keys[i]->str);
                rc = cfg_err(c, v, "must be a struct (a map)");
                cfg_pop(c, m3);
            }
        }
        cfg_pop(c, m2);
        if (!rc && !(*out = yn_copy(fm)))
            rc = -ENOMEM;
    }
    cfg_pop(c, mark);
    return rc;
}

const yn_node *cfg_metadata_entry(const yn_node *filter_metadata, const char *key)
{
    const yn_node *v = filter_metadata ? yn_map_get(filter_metadata, key) : NULL;
    return v && v->kind == YN_MAP ? v : NULL;
}
