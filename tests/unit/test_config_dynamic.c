/* Unit tests for config/config_dynamic.c: CDS/LDS files at load time and
 * the update diff (what may apply live, what needs a restart). */
#include "config/cluster_config.h"
#include "config/config.h"
#include "config/dynamic_config.h"
#include "pftest.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static char boot[128], cds[128];

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

#define CL "- \"@type\": type.googleapis.com/envoy.config.cluster.v3.Cluster\n"

static const char CDS_V1[] =
    "version_info: v1\n"
    "resources:\n"
    CL
    "  name: a\n"
    "  load_assignment:\n"
    "    endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: "
    "{address: 127.0.0.1, port_value: 1}}}}]}]\n"
    CL
    "  name: b\n"
    "  lb_policy: RANDOM\n";

static cfg_bootstrap *load_v1(void)
{
    put(cds, CDS_V1);
    cfg_bootstrap *b = NULL;
    char err[CFG_ERR_MAX];
    int rc = cfg_load(boot, NULL, &b, err, sizeof err);
    if (rc)
        fprintf(stderr, "load: %s\n", err);
    CHECK(rc == 0);
    return b;
}

/* Writes `text` as the CDS file and diffs it against b; returns the diff's rc. */
static int diff(cfg_bootstrap *b, const char *text, cfg_cds_update *u, char *msg, size_t len)
{
    put(cds, text);
    char err[CFG_ERR_MAX];
    int rc = cfg_cds_read(b, u, err, sizeof err);
    if (rc) {
        snprintf(msg, len, "%s", err);
        return rc;
    }
    return cfg_cds_diff(b, u, msg, len);
}

static void test_load(void)
{
    cfg_bootstrap *b = load_v1();
    if (!b)
        return;
    /* The static cluster first, then the file's, in order. */
    CHECK(b->n_clusters == 3);
    CHECK(!strcmp(b->clusters[0].name, "s") && !b->clusters[0].from_cds);
    CHECK(!strcmp(b->clusters[1].name, "a") && b->clusters[1].from_cds);
    CHECK(!strcmp(b->clusters[2].name, "b") && b->clusters[2].lb_policy == CFG_LB_RANDOM);
    CHECK(b->dynamic->cds.first == 1 && b->dynamic->cds.n == 2);
    CHECK(!strcmp(b->dynamic->cds.version_info, "v1"));
    CHECK(!strcmp(b->dynamic->node_id, "n"));
    cfg_free(b);
}

static void test_diff(void)
{
    cfg_bootstrap *b = load_v1();
    if (!b)
        return;
    char msg[CFG_ERR_MAX];
    cfg_cds_update u;
    /* Same clusters, reordered keys and documents: nothing to change. */
    const char *same =
        "resources:\n"
        CL "  lb_policy: RANDOM\n  name: b\n"
        CL "  name: a\n  load_assignment:\n    endpoints: [{lb_endpoints: [{endpoint: "
        "{address: {socket_address: {port_value: 1, address: 127.0.0.1}}}}]}]\n"
        "version_info: v2\n";
    CHECK(diff(b, same, &u, msg, sizeof msg) == 0);
    CHECK(u.changed && u.changed[0] == SIZE_MAX && u.changed[1] == SIZE_MAX);
    CHECK(cfg_cds_apply(b, &u) == 0);
    CHECK(!strcmp(b->dynamic->cds.version_info, "v2"));
    cfg_cds_update_free(&u);

    /* New endpoints for a: applied into the live cluster. */
    char moved[1024];
    snprintf(moved, sizeof moved, "%s", CDS_V1);
    char *p = strstr(moved, "127.0.0.1");
    memcpy(p, "127.0.0.2", 9);
    CHECK(diff(b, moved, &u, msg, sizeof msg) == 0);
    CHECK(u.changed[0] == 0 && u.changed[1] == SIZE_MAX);
    CHECK(cfg_cds_apply(b, &u) == 1);
    CHECK(!strcmp(b->clusters[1].endpoints[0].address, "127.0.0.2"));
    CHECK(b->clusters[1].lb->endpoints[0].weight == 1);
    cfg_cds_update_free(&u);

    /* Needs a restart: a field, an added and a removed cluster. */
    CHECK(diff(b, CDS_V1, &u, msg, sizeof msg) == 0);   /* back to .1 */
    cfg_cds_apply(b, &u);
    cfg_cds_update_free(&u);
    char other[1024];
    snprintf(other, sizeof other, "%s", CDS_V1);
    memcpy(strstr(other, "RANDOM"), "MAGLEV", 6);
    CHECK(diff(b, other, &u, msg, sizeof msg) == -EPERM);
    CHECK(!strcmp(msg, "cluster 'b': field 'lb_policy' changed"));
    cfg_cds_update_free(&u);
    snprintf(other, sizeof other, "%s" CL "  name: c\n", CDS_V1);
    CHECK(diff(b, other, &u, msg, sizeof msg) == -EPERM);
    CHECK(!strcmp(msg, "cluster 'c' added"));
    cfg_cds_update_free(&u);
    CHECK(diff(b, "resources: []\n", &u, msg, sizeof msg) == -EPERM);
    CHECK(!strcmp(msg, "cluster 'a' removed"));
    cfg_cds_update_free(&u);

    /* Invalid: located in the file; clashes with the static cluster. */
    CHECK(diff(b, "resources:\n" CL "  name: a\n  type: NOPE\n", &u, msg, sizeof msg) == -EINVAL);
    CHECK(strstr(msg, "cds.yaml:4:9: resources[0].type: invalid value 'NOPE'") != NULL);
    CHECK(diff(b, "resources:\n" CL "  name: s\n", &u, msg, sizeof msg) == -EINVAL);
    CHECK(strstr(msg, "cds.yaml:3:9: resources[0].name: cluster 's' is already defined") != NULL);
    /* Unreadable: not -EINVAL (counted as update_failure, not rejected). */
    unlink(cds);
    CHECK(cfg_cds_read(b, &u, msg, sizeof msg) == -ENOENT);
    CHECK(strstr(msg, "cds.yaml: cannot read: No such file") != NULL);
    cfg_free(b);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/pf-cfgdyn-XXXXXX");
    if (!mkdtemp(dir))
        return 2;
    snprintf(boot, sizeof boot, "%s/envoy.yaml", dir);
    snprintf(cds, sizeof cds, "%s/cds.yaml", dir);
    char text[512];
    snprintf(text, sizeof text,
             "node: {id: n, cluster: c}\n"
             "dynamic_resources:\n"
             "  cds_config: {resource_api_version: V3, path_config_source: {path: %s}}\n"
             "static_resources:\n"
             "  clusters: [{name: s}]\n", cds);
    put(boot, text);
    test_load();
    test_diff();
    unlink(cds);
    unlink(boot);
    rmdir(dir);
    return TEST_DONE();
}
