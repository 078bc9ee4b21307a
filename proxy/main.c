/* pilotfish: command line (Envoy's flags), config load, then the server. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config/config.h"
#include "proxy/local_info.h"
#include "proxy/log.h"
#include "proxy/server.h"

enum {
    OPT_CONFIG_YAML = 1000, OPT_MODE, OPT_CONCURRENCY, OPT_DRAIN_TIME, OPT_VERSION, OPT_HELP,
    OPT_IGNORED, OPT_SERVICE_CLUSTER, OPT_SERVICE_NODE,
};

static const struct option long_opts[] = {
    { "config-path", required_argument, NULL, 'c' },
    { "config-yaml", required_argument, NULL, OPT_CONFIG_YAML },
    { "mode", required_argument, NULL, OPT_MODE },
    { "concurrency", required_argument, NULL, OPT_CONCURRENCY },
    { "log-level", required_argument, NULL, 'l' },
    { "drain-time-s", required_argument, NULL, OPT_DRAIN_TIME },
    { "version", no_argument, NULL, OPT_VERSION },
    { "help", no_argument, NULL, OPT_HELP },
    /* Envoy flags that change nothing for a single static process. */
    { "service-cluster", required_argument, NULL, OPT_SERVICE_CLUSTER },
    { "service-node", required_argument, NULL, OPT_SERVICE_NODE },
    { "service-zone", required_argument, NULL, OPT_IGNORED },
    { "base-id", required_argument, NULL, OPT_IGNORED },
    { "disable-hot-restart", no_argument, NULL, OPT_IGNORED },
    { NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: pilotfish [options]\n"
            "An Envoy-compatible sidecar proxy.  Reads an Envoy v3 bootstrap; with no\n"
            "config it runs an embedded demo (listener :10000, 90/10 canary, admin :9901).\n\n"
            "  -c, --config-path FILE     Envoy v3 bootstrap (YAML or JSON)\n"
            "      --config-yaml STRING   bootstrap YAML merged over the file\n"
            "      --mode serve|validate  validate: load and check the config, bind nothing\n"
            "      --concurrency N        worker threads (default: number of cores)\n"
            "  -l, --log-level LEVEL      trace|debug|info|warning|error|critical|off\n"
            "      --drain-time-s N       graceful drain on SIGTERM/SIGINT (default 600)\n"
            "      --version              print the version and exit\n"
            "      --help                 this text\n"
            "      --service-cluster NAME --service-node NAME   for the HCM's add_user_agent\n"
            "Accepted and ignored (Envoy compatibility): --service-zone, --base-id,\n"
            "  --disable-hot-restart.\n");
}

static int parse_uint(const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    pf_server_opts opts = { .drain_time_ms = 600 * 1000 };
    bool validate = false;
    long v;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:l:", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            opts.config_path = optarg;
            break;
        case OPT_CONFIG_YAML:
            opts.config_yaml = optarg;
            break;
        case OPT_MODE:
            if (strcmp(optarg, "validate") == 0)
                validate = true;
            else if (strcmp(optarg, "serve") != 0) {
                fprintf(stderr, "pilotfish: --mode: expected serve or validate, got '%s'\n", optarg);
                return 1;
            }
            break;
        case OPT_CONCURRENCY:
            if (parse_uint(optarg, 1024, &v) || v == 0) {
                fprintf(stderr, "pilotfish: --concurrency: expected 1..1024, got '%s'\n", optarg);
                return 1;
            }
            opts.concurrency = (int)v;
            break;
        case 'l':
            if ((pf_log_level = pf_log_level_parse(optarg)) < 0) {
                fprintf(stderr, "pilotfish: --log-level: expected trace|debug|info|warning|error|"
                                "critical|off, got '%s'\n", optarg);
                return 1;
            }
            break;
        case OPT_DRAIN_TIME:
            if (parse_uint(optarg, 86400, &v)) {
                fprintf(stderr, "pilotfish: --drain-time-s: expected seconds, got '%s'\n", optarg);
                return 1;
            }
            opts.drain_time_ms = (uint64_t)v * 1000;
            break;
        case OPT_VERSION:
            printf("pilotfish version: %s\n", PF_VERSION);
            return 0;
        case OPT_HELP:
            usage(stdout);
            return 0;
        case OPT_SERVICE_CLUSTER:
            pf_local_info_set(optarg, NULL);
            break;
        case OPT_SERVICE_NODE:
            pf_local_info_set(NULL, optarg);
            break;
        case OPT_IGNORED:
            break;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pilotfish: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    if (!opts.concurrency) {
        unsigned n = uv_available_parallelism();
        opts.concurrency = n ? (int)n : 1;
    }

    cfg_bootstrap *cfg = NULL;
    char err[CFG_ERR_MAX];
    if (cfg_load(opts.config_path, opts.config_yaml, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "pilotfish: config error: %s\n", err);
        return 1;
    }
    if (validate) {
        printf("configuration '%s' OK\n",
               opts.config_path ? opts.config_path : opts.config_yaml ? "--config-yaml" : "(embedded)");
        cfg_free(cfg);
        return 0;
    }
    int rc = pf_server_run(&opts, cfg);
    cfg_free(cfg);
    return rc;
}
