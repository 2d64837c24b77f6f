-- Request metrics and the route key the access log shows.
--
-- The access phase stores one nginx variable per routed request, $np_route: the route's key
-- "<namespace>\t<ingress>\t<service>\t<path>\t<canary>\t<id>" (labels the renderer gave, empty where it gave
-- none; canary only in the keys of a route's canaries), built once when the virtual host is compiled. nginx's access log splits it with a map, in C. The log
-- phase counts each request into this worker's own tables, keyed by route, host, method and status; a
-- per-worker timer adds what was counted to the shared dict np_metrics once a second, so a request never
-- writes shared memory. GET /v1/metrics (control.lua) lists the shared dict as "<key>\t<value>" lines;
-- netplane/dataplane/gateway/metrics.py turns them into Prometheus text.
local valid = require "netplane.valid"

local ngx = ngx
local var = ngx.var
local now, start_time, get_method = ngx.now, ngx.req.start_time, ngx.req.get_method
local dict = ngx.shared.np_metrics
local tonumber, tostring, find, gmatch, ceil = tonumber, tostring, string.find, string.gmatch, math.ceil

local _M = {}

-- Bucket bounds: ingress-nginx's defaults (Prometheus' default seconds; 10 to 100 bytes in tens), so
-- dashboards built on its histograms read these the same way.
local TIME = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }
local SIZE = { 10, 20, 30, 40, 50, 60, 70, 80, 90, 100 }

-- A cell holds, per field, what was counted since the last flush: the request count, then four
-- histograms, each as one count per bucket (not cumulative; the last is beyond every bound) and a sum.
local REQUESTS = 1
local FIELDS = { "requests" }
local function histogram(name, bounds)
    local first = #FIELDS + 1
    for _, b in ipairs(bounds) do
        FIELDS[#FIELDS + 1] = name .. ":" .. tostring(b)
    end
    FIELDS[#FIELDS + 1] = name .. ":+Inf"
    FIELDS[#FIELDS + 1] = name .. ":sum"
    return first
end
local REQUEST_TIME = histogram("request_duration_seconds", TIME)
local UPSTREAM_TIME = histogram("response_duration_seconds", TIME)
local REQUEST_SIZE = histogram("request_size", SIZE)
local RESPONSE_SIZE = histogram("response_size", SIZE)
local NFIELDS = #FIELDS
local NTIME, NSIZE = #TIME, #SIZE

-- Bounds on what arbitrary requests can add: hosts per route (wildcard virtual hosts serve any name),
-- methods outside the standard ones are counted as OTHER.
local MAX_HOSTS = 32
local OVERFLOW_HOST = "_other_"
local METHODS = { GET = true, HEAD = true, POST = true, PUT = true, DELETE = true, CONNECT = true,
                  OPTIONS = true, TRACE = true, PATCH = true }
local FLUSH_S = 1

-- Route labels: all optional strings without control characters (they become access-log fields and
-- metric labels), in the order of the route key.
local LABELS = { "namespace", "ingress", "service", "path", "canary" }
local KNOWN_LABEL = { namespace = true, ingress = true, service = true, path = true }
local LABEL_MAX = 1024
-- The key of requests that found no route: empty labels and id.
local NO_ROUTE = "\t\t\t\t\t"

local function label(v, where)
    v = v == nil and "" or valid.string(v, where)
    valid.check(#v <= LABEL_MAX and not find(v, "[%z\1-\31\127]"), where,
                "must be at most " .. LABEL_MAX .. " characters without control characters")
    return v
end

-- The route key of a route document (see the top of this file); raises on bad labels. `canary`: the
-- label of the canary that took the request ("" or nil for the route's own key).
function _M.route_key(id, labels, canary)
    labels = valid.optional_table(labels, "labels") or {}
    for k in pairs(labels) do
        valid.check(KNOWN_LABEL[k], "labels." .. tostring(k), "unknown label (namespace, ingress, service, path)")
    end
    local parts = {}
    for i = 1, #LABELS - 1 do
        parts[i] = label(labels[LABELS[i]], "labels." .. LABELS[i])
    end
    parts[#LABELS] = canary or ""
    parts[#LABELS + 1] = id
    return table.concat(parts, "\t")
end

-- The keys of a route's canaries by their compiled group (what canary.choose answers): the route's labels
-- with "canary" set to each canary document's "label" (ingress-nginx's alternative upstream name).
function _M.canary_keys(id, labels, docs, compiled)
    local keys = {}
    for i, c in ipairs(compiled) do
        keys[c.group] = _M.route_key(id, labels, label(docs[i].label, "backend.canaries[" .. (i - 1) .. "].label"))
    end
    return keys
end

-- Per worker: cells[route key][host][method][status] = { counts..., prefix = shared-dict key prefix };
-- cells[route key][HOSTS] counts the hosts (a number key: hosts are strings).
local cells = {}
local HOSTS = 0
local dirty, ndirty = {}, 0

local function new_cell(key, host, method, status)
    local c = { prefix = key .. "\t" .. host .. "\t" .. method .. "\t" .. status .. "\t" }
    for i = 1, NFIELDS do
        c[i] = 0
    end
    return c
end

local function cell_for(key, host, method, status)
    local by_host = cells[key]
    if not by_host then
        by_host = { [HOSTS] = 0 }
        cells[key] = by_host
    end
    local by_method = by_host[host]
    if not by_method then
        if by_host[HOSTS] >= MAX_HOSTS then
            host = OVERFLOW_HOST
            by_method = by_host[host]
        end
        if not by_method then
            by_method = {}
            by_host[host] = by_method
            by_host[HOSTS] = by_host[HOSTS] + 1
        end
    end
    local by_status = by_method[method]
    if not by_status then
        by_status = {}
        by_method[method] = by_status
    end
    local c = by_status[status]
    if not c then
        c = new_cell(key, host, method, status)
        by_status[status] = c
    end
    return c
end

-- Bucket numbers without a loop: a loop inside the log phase's trace makes LuaJIT abort it ("inner loop in
-- root trace") and run the phase interpreted, about 13,000 instructions per request more. Checked against
-- TIME and SIZE when the module loads.
local function time_bucket(t)
    if t <= 0.1 then
        if t <= 0.01 then
            return t <= 0.005 and 1 or 2
        end
        if t <= 0.025 then
            return 3
        end
        return t <= 0.05 and 4 or 5
    end
    if t <= 1 then
        if t <= 0.25 then
            return 6
        end
        return t <= 0.5 and 7 or 8
    end
    if t <= 2.5 then
        return 9
    end
    if t <= 5 then
        return 10
    end
    return t <= 10 and 11 or 12
end

local function size_bucket(n)
    local i = ceil(n / 10)
    if i < 1 then
        return 1
    end
    return i > 11 and 11 or i
end

for i, b in ipairs(TIME) do
    assert(time_bucket(b) == i and time_bucket(b * 1.001) == i + 1, "metrics: time buckets out of step")
end
for i, b in ipairs(SIZE) do
    assert(size_bucket(b) == i and size_bucket(b + 0.5) == i + 1, "metrics: size buckets out of step")
end

local function observe(c, first, last, bucket, value)
    c[first + bucket - 1] = c[first + bucket - 1] + 1
    c[last] = c[last] + value
end

-- nginx lists one time per upstream tried ("0.004, 0.002"); the request's is their sum.
local function upstream_seconds(text)
    local t = tonumber(text)
    if t or not text or text == "" then
        return t
    end
    local sum
    for part in gmatch(text, "[%d.]+") do
        sum = (sum or 0) + tonumber(part)
    end
    return sum
end

-- log_by_lua of the listener servers: every request, routed or not (no route: empty route labels and host).
function _M.log()
    -- Unset (no route) reads as "".
    local key = var.np_route
    local host = ""
    local upstream
    if key ~= "" and key ~= nil then
        host = var.host or ""
        upstream = upstream_seconds(var.upstream_response_time)
    else
        key = NO_ROUTE
    end
    local method = get_method()
    if not METHODS[method] then
        method = "OTHER"
    end
    local c = cell_for(key, host, method, ngx.status)
    if c[REQUESTS] == 0 then
        ndirty = ndirty + 1
        dirty[ndirty] = c
    end
    c[REQUESTS] = c[REQUESTS] + 1
    local t = now() - start_time()
    observe(c, REQUEST_TIME, REQUEST_TIME + NTIME + 1, time_bucket(t), t)
    if upstream then
        observe(c, UPSTREAM_TIME, UPSTREAM_TIME + NTIME + 1, time_bucket(upstream), upstream)
    end
    local size = tonumber(var.request_length) or 0
    observe(c, REQUEST_SIZE, REQUEST_SIZE + NSIZE + 1, size_bucket(size), size)
    size = tonumber(var.bytes_sent) or 0
    observe(c, RESPONSE_SIZE, RESPONSE_SIZE + NSIZE + 1, size_bucket(size), size)
end

-- Adds what this worker counted since the last flush to the shared dict and starts again from zero.
local function flush()
    local failed, evicted
    for i = 1, ndirty do
        local c = dirty[i]
        dirty[i] = nil
        local prefix = c.prefix
        for f = 1, NFIELDS do
            local v = c[f]
            if v ~= 0 then
                local _, err, forcible = dict:incr(prefix .. FIELDS[f], v, 0)
                failed, evicted = failed or err, evicted or forcible
                c[f] = 0
            end
        end
    end
    ndirty = 0
    if failed or evicted then
        -- Once per flush at most: a full dict is a sizing problem (InstanceSettings.metrics_memory_mb).
        ngx.log(ngx.WARN, "netplane: metrics dict full: ", failed or "older series evicted")
    end
    -- This worker's Lua heap, for as long as the worker lives (a dead worker's entry expires).
    dict:set("lua_memory_bytes\t" .. ngx.worker.pid(), collectgarbage("count") * 1024, FLUSH_S * 3)
end

function _M.init_worker()
    -- The timer also runs once when the worker exits (a reload or a stop), so nothing counted is lost.
    local ok, err = ngx.timer.every(FLUSH_S, flush)
    if not ok then
        ngx.log(ngx.ERR, "netplane: metrics timer: ", err)
    end
end

-- GET /v1/metrics: every shared-dict entry as "<key>\t<value>\n".
function _M.dump()
    local out = {}
    for _, key in ipairs(dict:get_keys(0)) do
        local v = dict:get(key)
        if v then
            out[#out + 1] = key .. "\t" .. tostring(v) .. "\n"
        end
    end
    return table.concat(out)
end

return _M
