/* /runtime (Envoy's JSON: layers + per-key final and per-layer values) and
 * /runtime_modify (sets the admin layer, posts the snapshot to workers). */
#include <stdlib.h>
#include <string.h>

#include "admin/admin_http.h"
#include "admin/runtime.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/server_state.h"

static const runtime_entry *layer_find(const runtime_layer *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->entries[i].key, key) == 0)
            return &l->entries[i];
    return NULL;
}

void admin_h_runtime(const admin_request *rq, admin_response *rs)
{
    const pf_runtime_snapshot *s = runtime_loader_snapshot(pf_server_runtime(rq->srv));
    sbuf *b = &rs->body;
    rs->content_type = ADMIN_CT_JSON;
    sbuf_puts(b, "{\n \"entries\": {");
    for (size_t i = 0; s && i < s->n; i++) {
        const runtime_entry *e = &s->entries[i];
        sbuf_puts(b, i ? ",\n  " : "\n  ");
        admin_json_str(b, e->key);
        sbuf_puts(b, ": {\n   \"final_value\": ");
        admin_json_str(b, e->value);
        sbuf_puts(b, ",\n   \"layer_values\": [");
        for (size_t j = 0; j < s->n_layers; j++) {
            const runtime_entry *le = layer_find(&s->layers[j], e->key);
            sbuf_puts(b, j ? ", " : "");
            admin_json_str(b, le ? le->value : "");
        }
        sbuf_puts(b, "]\n  }");
    }
    sbuf_puts(b, s && s->n ? "\n },\n \"layers\": [" : "},\n \"layers\": [");
    for (size_t j = 0; s && j < s->n_layers; j++) {
        sbuf_puts(b, j ? ", " : "");
        admin_json_str(b, s->layers[j].name);
    }
    sbuf_puts(b, "]\n}\n");
}

void admin_h_runtime_modify(const admin_request *rq, admin_response *rs)
{
    if (rq->n_params == 0) {
        rs->status = 400;
        sbuf_puts(&rs->body, "usage: /runtime_modify?key1=value1&key2=value2&keyN=valueN\n"
                             "       or send the parameters as form values\n"
                             "use an empty value to remove a previously added override");
        return;
    }
    for (size_t i = 0; i < rq->n_params; i++) {
        if (!rq->params[i].key[0]) {
            rs->status = 400;
            sbuf_puts(&rs->body, "runtime key must not be empty\n");
            return;
        }
    }
    runtime_loader *l = pf_server_runtime(rq->srv);
    const char **keys = calloc(rq->n_params, sizeof *keys);
    const char **vals = calloc(rq->n_params, sizeof *vals);
    char err[128] = "out of memory";
    int rc = -1;
    if (l && keys && vals) {
        for (size_t i = 0; i < rq->n_params; i++) {
            keys[i] = rq->params[i].key;
            vals[i] = rq->params[i].value;
        }
        rc = runtime_loader_merge(l, keys, vals, rq->n_params, err, sizeof err);
    }
    free(keys);
    free(vals);
    if (rc) {
        rs->status = 503;
        sbuf_puts(&rs->body, err);
        return;
    }
    pf_server_publish_runtime(rq->srv);
    sbuf_puts(&rs->body, "OK\n");
}
