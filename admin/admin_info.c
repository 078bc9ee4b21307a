/* /server_info and /memory. */
#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include "admin/admin_http.h"
#include "proxy/log.h"
#include "proxy/server.h"
#include "proxy/server_state.h"

static const char *const level_names[] = {"trace", "debug", "info", "warning",
                                          "error", "critical", "off"};

static void kv_str(sbuf *b, const char *k, const char *v, bool comma)
{
    sbuf_printf(b, "  \"%s\": ", k);
    admin_json_str(b, v ? v : "");
    sbuf_puts(b, comma ? ",\n" : "\n");
}

void admin_h_server_info(const admin_request *rq, admin_response *rs)
{
    pf_server *srv = rq->srv;
    sbuf *b = &rs->body;
    uint64_t up = (uv_hrtime() - srv->start_time) / 1000000000ull;
    int lvl = pf_log_level >= 0 && pf_log_level <= PF_LOG_OFF ? pf_log_level : PF_LOG_INFO;
    rs->content_type = ADMIN_CT_JSON;
    sbuf_puts(b, "{\n");
    kv_str(b, "version", "pilotfish/" PF_VERSION "/Clean/RELEASE/OpenSSL", true);
    kv_str(b, "state", pf_server_state_name(pf_server_state_get(srv)), true);
    sbuf_printf(b, "  \"uptime_current_epoch\": \"%llus\",\n", (unsigned long long)up);
    sbuf_printf(b, "  \"uptime_all_epochs\": \"%llus\",\n", (unsigned long long)up);
    kv_str(b, "hot_restart_version", "disabled", true);
    sbuf_puts(b, "  \"command_line_options\": {\n");
    sbuf_puts(b, "   \"base_id\": \"0\",\n   \"use_dynamic_base_id\": false,\n"
                 "   \"base_id_path\": \"\",\n");
    sbuf_printf(b, "   \"concurrency\": %d,\n", srv->concurrency);
    sbuf_puts(b, "   \"config_path\": ");
    admin_json_str(b, srv->opts && srv->opts->config_path ? srv->opts->config_path : "");
    sbuf_puts(b, ",\n   \"config_yaml\": ");
    admin_json_str(b, srv->opts && srv->opts->config_yaml ? srv->opts->config_yaml : "");
    sbuf_puts(b, ",\n   \"allow_unknown_static_fields\": false,\n"
                 "   \"reject_unknown_dynamic_fields\": false,\n"
                 "   \"ignore_unknown_dynamic_fields\": false,\n"
                 "   \"admin_address_path\": \"\",\n"
                 "   \"local_address_ip_version\": \"v4\",\n");
    sbuf_printf(b, "   \"log_level\": \"%s\",\n", level_names[lvl]);
    sbuf_puts(b, "   \"component_log_level\": \"\",\n"
                 "   \"log_format\": \"[%Y-%m-%d %T.%e][%l] %v\",\n"
                 "   \"log_format_escaped\": false,\n"
                 "   \"log_path\": \"\",\n"
                 "   \"service_cluster\": \"\",\n"
                 "   \"service_node\": \"\",\n"
                 "   \"service_zone\": \"\",\n"
                 "   \"drain_strategy\": \"Gradual\",\n"
                 "   \"mode\": \"Serve\",\n"
                 "   \"disable_hot_restart\": true,\n"
                 "   \"enable_mutex_tracing\": false,\n"
                 "   \"restart_epoch\": 0,\n"
                 "   \"cpuset_threads\": false,\n"
                 "   \"disabled_extensions\": [],\n"
                 "   \"enable_fine_grain_logging\": false,\n"
                 "   \"socket_path\": \"@envoy_domain_socket\",\n"
                 "   \"socket_mode\": 0,\n"
                 "   \"enable_core_dump\": false,\n"
                 "   \"stats_tags\": [],\n"
                 "   \"file_flush_interval\": \"10s\",\n");
    uint64_t dms = srv->opts ? srv->opts->drain_time_ms : 600000;
    if (dms % 1000)
        sbuf_printf(b, "   \"drain_time\": \"%llu.%03llus\",\n", (unsigned long long)(dms / 1000),
                    (unsigned long long)(dms % 1000));
    else
        sbuf_printf(b, "   \"drain_time\": \"%llus\",\n", (unsigned long long)(dms / 1000));
    sbuf_puts(b, "   \"parent_shutdown_time\": \"900s\"\n  },\n");
    sbuf_puts(b, "  \"node\": {}\n}\n");
}

/* Envoy's memory stats from tcmalloc, mapped onto glibc's mallinfo2. */
void admin_h_memory(const admin_request *rq, admin_response *rs)
{
    struct mallinfo2 mi = mallinfo2();
    unsigned long long resident = 0, size = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);
    rs->content_type = ADMIN_CT_JSON;
    sbuf_printf(&rs->body,
                "{\n \"allocated\": \"%llu\",\n \"heap_size\": \"%llu\",\n"
                " \"pageheap_unmapped\": \"0\",\n \"pageheap_free\": \"%llu\",\n"
                " \"total_thread_cache\": \"0\",\n \"total_physical_bytes\": \"%llu\"\n}\n",
                (unsigned long long)(mi.uordblks + mi.hblkhd),
                (unsigned long long)(mi.arena + mi.hblkhd), (unsigned long long)mi.fordblks,
                resident * page);
}
