-- pilotfish.health: cross-cloud health-check translation for Lua filters
-- (shipped with pilotfish; require("pilotfish.health") needs no config).
--
-- Every health probe -- Google Cloud load balancers, AWS ELB/ALB/NLB, Azure
-- Load Balancer / Application Gateway / Front Door / Traffic Manager,
-- kubelet, Consul, or anything on a configured path -- is answered from ONE
-- canonical check of the local service, cached per worker:
--
--   check.kind = "grpc"       grpc.health.v1.Health/Check over an HTTP/2
--                             cluster (httpCall); healthy iff SERVING
--   check.kind = "http"       GET check.path on a cluster; healthy iff 2xx
--   check.kind = "pilotfish"  the cluster has a healthy host (pilotfish's
--                             active health checks / outlier detection)
--
-- Draining (admin POST /healthcheck/fail, SIGTERM drain) is read on every
-- probe through the pilotfish handle extension h:pilotfish():draining():
-- load balancers and readiness probes then get 503 so traffic fails over,
-- while liveness probes (liveness_paths) stay 200 so kubelet does not kill
-- a pod for draining.  Requests that are not probes pass through untouched.
--
-- Usage (inline_code of envoy.filters.http.lua):
--   local health = require("pilotfish.health").new({
--     check = {kind = "grpc", cluster = "app_grpc", service = "my.Service",
--              timeout_ms = 500},
--     cache_ms = 1000, paths = {"/healthz", "/ready"},
--     liveness_paths = {"/livez"}})
--   function envoy_on_request(h) health:handle(h) end
--
-- Options are validated by new(): a bad option raises an error, which
-- pilotfish reports as a configuration error at load.

local M = {}

-- Known probers, first match wins.  match: Lua pattern on User-Agent.
-- healthy: status codes the prober counts as healthy (documentation and
-- the answer status); every prober below accepts 200 and treats 503 as
-- unhealthy, so those are what is sent.
M.PROBERS = {
  {name = "gcp", match = "^GoogleHC/",
   expects = "200 only (optional response-body match)"},
  {name = "aws-elb", match = "^ELB%-HealthChecker/",
   expects = "matcher codes, default 200"},
  {name = "azure-front-door", match = "^Edge Health Probe",
   expects = "200 only; HEAD by default"},
  {name = "azure-traffic-manager", match = "^Azure Traffic Manager Endpoint Monitor",
   expects = "expected ranges, default 200; answer within 10 s"},
  {name = "azure-application-gateway", match = "[Aa]pplication ?[Gg]ateway",
   expects = "200-399 (custom probe match)"},
  {name = "kubelet", match = "^kube%-probe/",
   expects = "200-399"},
  {name = "consul", match = "^Consul Health Check",
   expects = "2xx passing, 429 warning, other critical"},
}

-- Azure Load Balancer probes carry no distinctive User-Agent: they are
-- recognised by their fixed source address.
M.DEFAULT_SOURCES = {"168.63.129.16"}

local GRPC_HEALTH_PATH = "/grpc.health.v1.Health/Check"
local SERVING_NAMES = {[0] = "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"}

-- Per-worker state (each worker has its own Lua state, so module upvalues
-- are per worker): canonical results keyed by the check's identity.
--   results[key] = {ok = bool, reason = string, at = ms, inflight_since = ms|nil}
local results = {}
M._results = results        -- exposed for tests/diagnostics only

-- ---------------------------------------------------------------- options

local function fail(msg, ...)
  error("pilotfish.health: " .. string.format(msg, ...), 0)
end

local function check_type(v, want, name)
  if type(v) ~= want then
    fail("%s must be a %s (got %s)", name, want, type(v))
  end
end

local function check_keys(t, allowed, where)
  for k in pairs(t) do
    if not allowed[k] then
      local names = {}
      for a in pairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      fail("unknown option %s%s (known: %s)", where, tostring(k), table.concat(names, ", "))
    end
  end
end

local function path_set(list, name)
  local set = {}
  if list == nil then return set end
  check_type(list, "table", name)
  for i, p in ipairs(list) do
    if type(p) ~= "string" or p:sub(1, 1) ~= "/" then
      fail("%s[%d] must be a path starting with '/' (got %s)", name, i, tostring(p))
    end
    set[p] = true
  end
  return set
end

local function parse_ipv4(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return ((a * 256 + b) * 256 + c) * 256 + d
end

-- sources: exact addresses (IPv4 or IPv6 text) and IPv4 CIDRs.
local function parse_sources(list)
  local exact, cidrs = {}, {}
  check_type(list, "table", "sources")
  for i, s in ipairs(list) do
    if type(s) ~= "string" then fail("sources[%d] must be a string", i) end
    local ip, bits = s:match("^([^/]+)/(%d+)$")
    if ip then
      local n, b = parse_ipv4(ip), tonumber(bits)
      if not n or b > 32 then fail("sources[%d]: '%s' is not an IPv4 CIDR", i, s) end
      local size = 2 ^ (32 - b)
      cidrs[#cidrs + 1] = {base = n - n % size, size = size}
    elseif parse_ipv4(s) or s:find(":", 1, true) then
      exact[s:lower()] = true
    else
      fail("sources[%d]: '%s' is not an IP address or IPv4 CIDR", i, s)
    end
  end
  return exact, cidrs
end

local function positive_int(v, name, default)
  if v == nil then return default end
  if type(v) ~= "number" or v < 0 or v % 1 ~= 0 then
    fail("%s must be a non-negative integer (got %s)", name, tostring(v))
  end
  return v
end

local CHECK_KEYS = {kind = true, cluster = true, service = true, path = true,
                    timeout_ms = true, authority = true}
local OPT_KEYS = {check = true, cache_ms = true, paths = true, liveness_paths = true,
                  sources = true, agents = true, liveness = true, healthy_body = true,
                  unhealthy_status = true}

local function validate_check(c)
  check_type(c, "table", "check")
  check_keys(c, CHECK_KEYS, "check.")
  local kind = c.kind
  if kind ~= "grpc" and kind ~= "http" and kind ~= "pilotfish" then
    fail("check.kind must be \"grpc\", \"http\" or \"pilotfish\" (got %s)", tostring(kind))
  end
  if type(c.cluster) ~= "string" or c.cluster == "" then
    fail("check.cluster must name a cluster")
  end
  local out = {kind = kind, cluster = c.cluster,
               timeout_ms = positive_int(c.timeout_ms, "check.timeout_ms", 1000),
               authority = c.authority or c.cluster}
  check_type(out.authority, "string", "check.authority")
  if out.timeout_ms == 0 then fail("check.timeout_ms must be > 0") end
  if kind == "grpc" then
    out.service = c.service or ""
    check_type(out.service, "string", "check.service")
    if c.path ~= nil then fail("check.path is for kind \"http\"") end
    out.key = "grpc|" .. out.cluster .. "|" .. out.service
  elseif kind == "http" then
    if type(c.path) ~= "string" or c.path:sub(1, 1) ~= "/" then
      fail("check.path must be a path starting with '/' for kind \"http\"")
    end
    if c.service ~= nil then fail("check.service is for kind \"grpc\"") end
    out.path = c.path
    out.key = "http|" .. out.cluster .. "|" .. out.path
  else
    if c.service ~= nil or c.path ~= nil then
      fail("check.service / check.path do not apply to kind \"pilotfish\"")
    end
    out.key = "pilotfish|" .. out.cluster
  end
  return out
end

-- ---------------------------------------------------------------- helpers

local function varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = (n - b) / 128
    out[#out + 1] = string.char(n > 0 and b + 128 or b)
  until n == 0
  return table.concat(out)
end

local function be32(n)
  return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
                     math.floor(n / 256) % 256, n % 256)
end

-- The gRPC request body: one uncompressed frame holding HealthCheckRequest.
function M.grpc_request_body(service)
  local msg = service ~= "" and ("\10" .. varint(#service) .. service) or ""
  return "\0" .. be32(#msg) .. msg
end

local function read_varint(s, i)
  local n, mul = 0, 1
  while i <= #s do
    local b = s:byte(i)
    i = i + 1
    n = n + (b % 128) * mul
    if b < 128 then return n, i end
    mul = mul * 128
    if mul > 2 ^ 63 then return nil end
  end
  return nil
end

-- HealthCheckResponse.status (field 1) from a gRPC response body; nil when
-- the body holds no parsable uncompressed message.
function M.grpc_response_status(body)
  if type(body) ~= "string" or #body < 5 or body:byte(1) ~= 0 then return nil end
  local len = ((body:byte(2) * 256 + body:byte(3)) * 256 + body:byte(4)) * 256 + body:byte(5)
  if #body < 5 + len then return nil end
  local msg, i, status = body:sub(6, 5 + len), 1, 0   -- proto3 default: UNKNOWN
  while i <= #msg do
    local tag
    tag, i = read_varint(msg, i)
    if not tag then return nil end
    local field, wt = math.floor(tag / 8), tag % 8
    if wt == 0 then
      local v
      v, i = read_varint(msg, i)
      if not v then return nil end
      if field == 1 then status = v end
    elseif wt == 2 then
      local l
      l, i = read_varint(msg, i)
      if not l then return nil end
      i = i + l
    elseif wt == 1 then i = i + 8
    elseif wt == 5 then i = i + 4
    else return nil end
  end
  return status
end

local function client_ip(h)
  local ok, addr = pcall(function()
    return h:streamInfo():downstreamDirectRemoteAddress()
  end)
  if not ok or type(addr) ~= "string" then return nil end
  local v6 = addr:match("^%[(.-)%]")
  if v6 then return v6:lower() end
  return (addr:match("^(.*):%d+$") or addr):lower()
end

local function lookup_agent(self, ua)
  if not ua then return nil end
  for _, p in ipairs(self.probers) do
    if ua:find(p.match) then return p.name end
  end
  return nil
end

-- ---------------------------------------------------------------- checks

local function grpc_check(h, c)
  local hdrs, body = h:httpCall(c.cluster, {
    [":method"] = "POST", [":path"] = GRPC_HEALTH_PATH, [":authority"] = c.authority,
    ["content-type"] = "application/grpc", ["te"] = "trailers",
    ["grpc-timeout"] = c.timeout_ms .. "m",
  }, M.grpc_request_body(c.service), c.timeout_ms)
  local st = hdrs and hdrs[":status"]
  if st ~= "200" then
    return false, "gRPC health check: HTTP " .. tostring(st) ..
                  (body == "upstream failure" and " (upstream failure)" or "")
  end
  local gs = hdrs["grpc-status"]     -- present here only in a trailers-only answer
  if gs and gs ~= "0" then
    return false, "gRPC health check: grpc-status " .. gs
  end
  local status = M.grpc_response_status(body)
  if status == nil then
    return false, "gRPC health check: no HealthCheckResponse"
  end
  if status == 1 then return true, "SERVING" end
  return false, SERVING_NAMES[status] or ("status " .. status)
end

local function http_check(h, c)
  local hdrs, body = h:httpCall(c.cluster, {
    [":method"] = "GET", [":path"] = c.path, [":authority"] = c.authority,
    ["user-agent"] = "pilotfish-health",
  }, nil, c.timeout_ms)
  local st = tonumber(hdrs and hdrs[":status"]) or 0
  if st >= 200 and st < 300 then return true, "HTTP " .. st end
  return false, "HTTP " .. st .. (body == "upstream failure" and " (upstream failure)" or "")
end

local function pilotfish_check(h, c)
  if not h.pilotfish then
    return false, "check kind \"pilotfish\" needs pilotfish's handle:pilotfish()"
  end
  local ok, n, total = h:pilotfish():clusterHealthy(c.cluster)
  return ok, string.format("%d/%d healthy hosts in %s", n, total, c.cluster)
end

local RUN = {grpc = grpc_check, http = http_check, pilotfish = pilotfish_check}

-- The canonical result: from the worker's cache while fresh; otherwise one
-- check.  While a check is in flight, other probes on this worker get the
-- previous result (stale by at most cache_ms + timeout_ms) instead of a
-- second check; only before the first result ever do they check too.
function M:status(h)
  local c, now = self.check, h:timestamp()
  local r = results[c.key]
  if r and r.at and now >= r.at and now - r.at < self.cache_ms then
    return r.ok, r.reason
  end
  if r and r.inflight_since and now - r.inflight_since < c.timeout_ms + 1000 and r.at then
    return r.ok, r.reason
  end
  if not r then
    r = {}
    results[c.key] = r
  end
  r.inflight_since = now
  self.checks = self.checks + 1
  local okcall, ok, reason = pcall(RUN[c.kind], h, c)
  if not okcall then
    ok, reason = false, "check error: " .. tostring(ok)
  end
  ok = ok and true or false
  if r.at == nil or r.ok ~= ok then
    local log = ok and h.logInfo or h.logWarn
    pcall(log, h, string.format("pilotfish.health: %s is %s (%s)", c.key,
                                ok and "healthy" or "unhealthy", tostring(reason)))
  end
  r.ok, r.reason, r.at, r.inflight_since = ok, reason, h:timestamp(), nil
  return ok, reason
end

local function is_draining(h)
  if not h.pilotfish then return false end
  local ok, d = pcall(function() return h:pilotfish():draining() end)
  return ok and d == true
end

local function answer(self, h, prober, healthy, reason)
  local status = healthy and 200 or self.unhealthy_status
  local body = healthy and self.healthy_body or ("UNAVAILABLE: " .. reason)
  h:respond({[":status"] = tostring(status),
             ["content-type"] = "text/plain",
             ["cache-control"] = "no-store",
             ["x-pilotfish-probe"] = prober}, body)
end

-- gRPC health probes (GCP gRPC health checks, kubelet grpc probes, ...)
-- speak gRPC themselves: while draining they get UNAVAILABLE (trailers-only);
-- otherwise they pass through to the route (the Lua API cannot send trailers,
-- so pilotfish cannot forge a SERVING answer).
local function grpc_probe(self, h, hs)
  if not is_draining(h) then return false end
  h:respond({[":status"] = "200", ["content-type"] = "application/grpc",
             ["grpc-status"] = "14", ["grpc-message"] = "draining",
             ["x-pilotfish-probe"] = "grpc"}, nil)
  return true
end

-- Classifies the request: nil (not a probe) or prober name, liveness flag.
function M:classify(h)
  local hs = h:headers()
  local path = hs:get(":path") or "/"
  path = path:match("^[^?]*")
  local liveness = self.liveness_paths[path] == true
  local agent = lookup_agent(self, hs:get("user-agent"))
  if agent then return agent, liveness end
  if liveness or self.paths[path] then return "generic", liveness end
  local ip = client_ip(h)
  if ip then
    if self.sources[ip] then return "azure-load-balancer", false end
    local n = #self.cidrs > 0 and parse_ipv4(ip)
    if n then
      for _, c in ipairs(self.cidrs) do
        if n >= c.base and n < c.base + c.size then return "azure-load-balancer", false end
      end
    end
  end
  return nil
end

-- envoy_on_request entry point.  Returns true when it answered a probe
-- (the stream is finished), false when the request passes through.
function M:handle(h)
  local hs = h:headers()
  if hs:get(":path") == GRPC_HEALTH_PATH and
     (hs:get("content-type") or ""):sub(1, 16) == "application/grpc" then
    return grpc_probe(self, h, hs)
  end
  local prober, liveness = self:classify(h)
  if not prober then return false end
  if liveness then
    -- liveness: never fails for draining (a draining pod must not be killed)
    if self.liveness == "process" then
      answer(self, h, prober, true, "alive")
      return true
    end
    local ok, reason = self:status(h)
    answer(self, h, prober, ok, reason)
    return true
  end
  if is_draining(h) then
    answer(self, h, prober, false, "draining")
    return true
  end
  local ok, reason = self:status(h)
  answer(self, h, prober, ok, reason)
  return true
end

-- ---------------------------------------------------------------- new

function M.new(opts)
  check_type(opts, "table", "options")
  check_keys(opts, OPT_KEYS, "")
  local self = setmetatable({}, {__index = M})
  self.check = validate_check(opts.check)
  self.cache_ms = positive_int(opts.cache_ms, "cache_ms", 1000)
  self.paths = path_set(opts.paths, "paths")
  self.liveness_paths = path_set(opts.liveness_paths, "liveness_paths")
  for p in pairs(self.liveness_paths) do
    if self.paths[p] then fail("path %s is in both paths and liveness_paths", p) end
  end
  self.sources, self.cidrs = parse_sources(opts.sources or M.DEFAULT_SOURCES)
  self.probers = {}
  for _, p in ipairs(M.PROBERS) do self.probers[#self.probers + 1] = p end
  if opts.agents ~= nil then
    check_type(opts.agents, "table", "agents")
    local names = {}
    for name in pairs(opts.agents) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      local pat = opts.agents[name]
      if type(name) ~= "string" or type(pat) ~= "string" or pat == "" then
        fail("agents must map prober names to User-Agent Lua patterns")
      end
      if not pcall(string.find, "", pat) then fail("agents.%s: bad Lua pattern '%s'", name, pat) end
      table.insert(self.probers, 1, {name = name, match = pat})
    end
  end
  self.liveness = opts.liveness or "check"
  if self.liveness ~= "check" and self.liveness ~= "process" then
    fail("liveness must be \"check\" or \"process\" (got %s)", tostring(opts.liveness))
  end
  self.healthy_body = opts.healthy_body or "OK"
  check_type(self.healthy_body, "string", "healthy_body")
  self.unhealthy_status = positive_int(opts.unhealthy_status, "unhealthy_status", 503)
  if self.unhealthy_status < 400 or self.unhealthy_status > 599 then
    fail("unhealthy_status must be a 4xx or 5xx code")
  end
  self.checks = 0
  return self
end

return M
