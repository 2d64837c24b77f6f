-- The request path: find the virtual host for (listener port, Host), take the first of its ordered
-- routes that matches, run the route's request filters, pick a peer. Virtual hosts are compiled per
-- worker on first use and recompiled only when their own version changes (see docs.lua).
local docs = require "netplane.docs"
local balancer = require "netplane.balancer"
local canary = require "netplane.canary"
local filters = require "netplane.filters"
local valid = require "netplane.valid"
local cidr = require "netplane.cidr"
local limits = require "netplane.limits"
local metrics = require "netplane.metrics"

local ngx = ngx
local var = ngx.var
local dict = docs.dict
local re_find = ngx.re.find
local get_uri_args = ngx.req.get_uri_args
local byte, sub, find = string.byte, string.sub, string.find
local in_ranges = cidr.contains
local acquire = limits.acquire
local check, fail = valid.check, valid.fail
local run_filters = filters.run
local choose_canary = canary.choose
local VHOST = docs.VHOST
local ANY, EXACT, PREFIX, REGEX, STARTS_WITH = filters.ANY, filters.EXACT, filters.PREFIX, filters.REGEX,
    filters.STARTS_WITH
local HEADER, QUERY, COOKIE = 1, 2, 3
local IS_EXACT, IS_PREFIX, IS_SUFFIX, IS_REGEX, IS_PRESENT = 1, 2, 3, 4, 5
local HOST_CACHE_LIMIT = 10000

local _M = {}

local OPS = { exact = IS_EXACT, prefix = IS_PREFIX, suffix = IS_SUFFIX, regex = IS_REGEX, present = IS_PRESENT }

-- [{"name": "X-Canary", "type": "exact" | "prefix" | "suffix" | "regex" | "present", "value": "...",
--   "invert": false}]: an inverted condition holds when the plain one does not (absent value included).
local function compile_conditions(list, source, where, out)
    for i, c in ipairs(valid.optional_table(list, where) or {}) do
        local w = where .. "[" .. (i - 1) .. "]"
        valid.table(c, w)
        local name = source == QUERY and valid.string(c.name, w .. ".name") or valid.token(c.name, w .. ".name")
        local op = OPS[c.type or "exact"]
        check(op, w .. ".type", "must be exact, prefix, suffix, regex or present")
        local cond = { source = source, op = op, name = name, invert = valid.bool(c.invert, w .. ".invert") }
        if source == HEADER then
            cond.name = "http_" .. name:lower():gsub("-", "_")
        end
        if op ~= IS_PRESENT then
            cond.value = valid.string(c.value, w .. ".value")
        end
        if op == IS_REGEX then
            local _, _, err = re_find("", cond.value, "jo")
            check(not err, w .. ".value", "invalid regex: " .. tostring(err))
        end
        out[#out + 1] = cond
    end
end

-- Request values needed by conditions, read once per request and only if some route asks.
local req_args, req_method

local function condition_value(c)
    local source = c.source
    if source == HEADER then
        return var[c.name]
    elseif source == COOKIE then
        return balancer.cookie(c.name)
    end
    if not req_args then
        req_args = get_uri_args(100)
    end
    local v = req_args[c.name]
    if type(v) == "table" then
        v = v[1]
    end
    return v == true and "" or v
end

local function condition_holds(c)
    local v = condition_value(c)
    if v == nil then
        return false
    end
    local op = c.op
    if op == IS_EXACT then
        return v == c.value
    elseif op == IS_PREFIX then
        return find(v, c.value, 1, true) == 1
    elseif op == IS_SUFFIX then
        local n = #c.value
        return n <= #v and sub(v, -n) == c.value
    elseif op == IS_REGEX then
        return re_find(v, c.value, "jo") ~= nil
    end
    return true
end

local function conditions_hold(conds)
    for i = 1, #conds do
        local c = conds[i]
        if condition_holds(c) == c.invert then
            return false
        end
    end
    return true
end

-- The literal text an anchored regex must start with ("^/api/v[0-9]+" → "/api/v"), so most
-- non-matching paths are turned away by a string comparison instead of a regex run; nil if none.
local function literal_prefix(regex)
    if byte(regex, 1) ~= 94 then
        return nil
    end
    local lit = regex:match("^%^([^\\.^$|?*+()%[%]{}]*)")
    local after = byte(regex, #lit + 2)
    -- A quantifier applies to the last literal character, which may then be absent or repeated.
    if after == 42 or after == 43 or after == 63 or after == 123 then
        lit = sub(lit, 1, -2)
    end
    -- With alternation at the top level the prefix binds only the first branch.
    if lit == "" or find(regex, "|", 1, true) then
        return nil
    end
    return lit
end

local function compile_path(p, route)
    if p == nil then
        route.kind = ANY
        return
    end
    valid.table(p, "match.path")
    local kind = p.type
    if kind == "exact" then
        route.kind, route.path = EXACT, valid.path(p.value, "match.path.value")
    elseif kind == "prefix" then
        local v = valid.path(p.value, "match.path.value")
        -- Element-wise: "/a/" and "/a" both match "/a", "/a/" and "/a/b", never "/ab".
        while #v > 1 and byte(v, -1) == 47 do
            v = sub(v, 1, -2)
        end
        if v == "/" then
            route.kind = ANY
        else
            route.kind, route.path, route.plen = PREFIX, v, #v
        end
    elseif kind == "starts-with" then
        route.kind, route.path = STARTS_WITH, valid.path(p.value, "match.path.value")
    elseif kind == "regex" then
        local v = valid.string(p.value, "match.path.value")
        route.flags = valid.bool(p.ignore_case, "match.path.ignore_case") and "joi" or "jo"
        local _, _, err = re_find("", v, route.flags)
        check(not err, "match.path.value", "invalid regex: " .. tostring(err))
        route.kind, route.path = REGEX, v
        if route.flags == "jo" then
            route.literal = literal_prefix(v)
        end
    else
        fail("match.path.type", "must be exact, prefix, starts-with or regex")
    end
end

-- One conjunction of a route's match: every condition given must hold.
local function compile_match(m, where, entry)
    valid.table(m, where)
    compile_path(m.path, entry)
    if m.methods ~= nil then
        entry.methods = valid.string_set(m.methods, where .. ".methods")
    end
    local conds = {}
    compile_conditions(m.headers, HEADER, where .. ".headers", conds)
    compile_conditions(m.query, QUERY, where .. ".query", conds)
    compile_conditions(m.cookies, COOKIE, where .. ".cookies", conds)
    entry.conds = #conds > 0 and conds or nil
    if m.source_ranges ~= nil then
        entry.ranges = cidr.compile_list(m.source_ranges, where .. ".source_ranges")
    end
    return entry
end

-- A route compiles to one entry per alternative of its match ("match": one conjunction, or "matches":
-- any of several), consecutive in the vhost's order; the entries share the route's action.
local function compile_route(r, out)
    valid.table(r, "route")
    local action = { id = r.id == nil and "" or valid.string(r.id, "id") }
    action.log_key = metrics.route_key(action.id, r.labels)
    if r.backend ~= nil then
        action.group = balancer.compile_group(r.backend)
        action.canaries = canary.compile(r.backend.canaries, "backend.canaries")
        if action.canaries then
            action.canary_keys = metrics.canary_keys(action.id, r.labels, r.backend.canaries, action.canaries)
        end
    end
    action.retries = r.retries == nil and 0 or valid.int(r.retries, "retries", 0, 100)
    if r.timeouts ~= nil then
        local t = valid.table(r.timeouts, "timeouts")
        local function ms(v, w)
            return v and valid.int(v, w, 1, 86400000) / 1000
        end
        action.timeouts = { ms(t.connect_ms, "timeouts.connect_ms"), ms(t.send_ms, "timeouts.send_ms"),
                            ms(t.read_ms, "timeouts.read_ms") }
    end
    local matches
    if r.matches ~= nil then
        check(r.match == nil, "matches", "give either match or matches")
        matches = valid.table(r.matches, "matches")
        check(#matches > 0, "matches", "must not be empty")
    else
        matches = { valid.optional_table(r.match, "match") or {} }
    end
    for i, m in ipairs(matches) do
        local entry = {}
        for k, v in pairs(action) do
            entry[k] = v
        end
        compile_match(m, r.matches and ("matches[" .. (i - 1) .. "]") or "match", entry)
        -- Filters compile per entry: prefix replacements depend on the prefix that matched.
        entry.req_filters, entry.resp_filters = filters.compile(r.filters or {}, entry)
        -- Requests that need more than the common location continue in a named one: the WAF profile's,
        -- @np_conn (log phase: gives the connection slot back) or @np_full (header filter, retries).
        if not entry.location and entry.conn_limit then
            entry.location = "@np_conn"
        end
        entry.full = entry.location ~= nil or entry.retries > 0 or entry.resp_filters ~= nil
        out[#out + 1] = entry
    end
end

-- Virtual host document (see docs/design/gateway-engine.md):
-- {"ports": [80], "hostnames": ["a.example", "*.example"], "wildcard": "any-labels" | "one-label",
--  "routes": [<route>, ...]}
function _M.compile_vhost(doc, name)
    valid.table(doc, "vhost " .. name)
    local ports = {}
    for i, p in ipairs(valid.table(doc.ports, "ports")) do
        ports[#ports + 1] = valid.int(p, "ports[" .. (i - 1) .. "]", 1, 65535)
    end
    check(#ports > 0, "ports", "must name at least one listener port")
    local hostnames = {}
    for i, h in ipairs(valid.table(doc.hostnames, "hostnames")) do
        hostnames[#hostnames + 1] = valid.hostname(h, "hostnames[" .. (i - 1) .. "]")
    end
    check(#hostnames > 0, "hostnames", "must not be empty (\"*\" serves any host)")
    local wildcard = doc.wildcard == nil and "any-labels" or valid.string(doc.wildcard, "wildcard")
    check(wildcard == "any-labels" or wildcard == "one-label", "wildcard", "must be any-labels or one-label")
    local routes = {}
    for i, r in ipairs(valid.table(doc.routes, "routes")) do
        local ok, err = pcall(compile_route, r, routes)
        if not ok then
            local id = type(r) == "table" and type(r.id) == "string" and (" (" .. r.id .. ")") or ""
            error("routes[" .. (i - 1) .. "]" .. id .. ": " .. err, 0)
        end
    end
    local exact, prefix, other = {}, {}, {}
    for i, r in ipairs(routes) do
        local index = r.kind == EXACT and exact or r.kind == PREFIX and prefix or nil
        if index then
            local list = index[r.path] or {}
            list[#list + 1] = i
            index[r.path] = list
        else
            other[#other + 1] = i
        end
    end
    return { ports = ports, hostnames = hostnames, one_label = wildcard == "one-label", routes = routes,
             exact = exact, prefix = next(prefix) and prefix or nil, other = #other > 0 and other or nil }
end

-- Per worker: host → virtual host name (false: none), checked at a generation.
local host_cache, host_cache_size = {}, 0

local function vhost_name(port, host, gen)
    local per_port = host_cache[port]
    if not per_port then
        per_port = {}
        host_cache[port] = per_port
    end
    local entry = per_port[host]
    if entry and entry[1] == gen then
        return entry[2]
    end
    local name = docs.lookup_host(docs.host_index(port), host) or false
    if entry then
        entry[1], entry[2] = gen, name
    else
        -- Bounded: arbitrary Host headers must not grow a worker without limit.
        host_cache_size = host_cache_size + 1
        if host_cache_size > HOST_CACHE_LIMIT then
            host_cache, host_cache_size = { [port] = {} }, 1
            per_port = host_cache[port]
        end
        per_port[host] = { gen, name }
    end
    return name
end

-- Scratch space of the match (a worker runs one match at a time; nothing in it yields).
local cand_lists, cand_heads = {}, {}

-- The match has no loops, only tail calls. `access` runs once per request, so LuaJIT starts its root
-- trace at the function's entry; a loop met on the way aborts that trace ("inner loop in root trace"),
-- and whether the loops' own traces or the aborts came first decided, run to run, between two costs
-- (≈ 45k or ≈ 59k instructions per request). A tail call is unrolled into the trace (up to LuaJIT's
-- loopunroll, 15 per trace), so the whole request path compiles as one trace, the same every run.

local function add_candidates(list, n)
    if list then
        n = n + 1
        cand_lists[n], cand_heads[n] = list, 1
    end
    return n
end

-- The prefix-path lists of every segment prefix of `uri` ("/a" and "/a/b" of "/a/b/c"), from `from`.
local function add_prefixes(prefix, uri, from, n)
    local slash = find(uri, "/", from, true)
    if not slash then
        return n
    end
    return add_prefixes(prefix, uri, slash + 1, add_candidates(prefix[sub(uri, 1, slash - 1)], n))
end

-- The candidate list (k) whose next route comes first, and that route's number.
local function lowest(k, n, best_k, best_i)
    if k > n then
        return best_k, best_i
    end
    local i = cand_lists[k][cand_heads[k]]
    if i and (not best_i or i < best_i) then
        best_k, best_i = k, i
    end
    return lowest(k + 1, n, best_k, best_i)
end

-- The candidates in route order (lists merged by their heads) until one matches.
local function next_match(routes, uri, n)
    local best_k, best_i = lowest(1, n, 0, nil)
    if not best_i then
        return nil
    end
    cand_heads[best_k] = cand_heads[best_k] + 1
    local r = routes[best_i]
    local hit = true
    local kind = r.kind
    if kind == REGEX then
        local lit = r.literal
        hit = (lit == nil or find(uri, lit, 1, true) == 1) and re_find(uri, r.path, r.flags) ~= nil
    elseif kind == STARTS_WITH then
        hit = find(uri, r.path, 1, true) == 1
    end
    if hit and r.methods then
        req_method = req_method or var.request_method
        hit = r.methods[req_method]
    end
    if hit and r.ranges then
        hit = in_ranges(r.ranges, var.binary_remote_addr)
    end
    if hit and r.conds then
        hit = conditions_hold(r.conds)
    end
    if hit then
        return r
    end
    return next_match(routes, uri, n)
end

-- The route a request takes: the lowest-numbered route that matches. Candidates come from the
-- vhost's indexes (exact paths, prefix paths by every segment prefix of the URI, and the routes that
-- are neither), merged in route order, so a host with thousands of routes costs a few table lookups
-- rather than a scan.
local function first_match(vh)
    local uri = var.uri
    local n = add_candidates(vh.exact[uri], 0)
    local prefix = vh.prefix
    if prefix then
        n = add_prefixes(prefix, uri, 2, n)
        if byte(uri, -1) ~= 47 then
            n = add_candidates(prefix[uri], n)
        end
    end
    return next_match(vh.routes, uri, add_candidates(vh.other, n))
end

local function reject(status, reason)
    ngx.header["X-Netplane-Reason"] = reason
    return ngx.exit(status)
end

local function add_cookie(cookie)
    local header = ngx.header
    local old = header["Set-Cookie"]
    if old == nil then
        header["Set-Cookie"] = cookie
    elseif type(old) == "table" then
        old[#old + 1] = cookie
        header["Set-Cookie"] = old
    else
        header["Set-Cookie"] = { old, cookie }
    end
end

-- access_by_lua of every listener's server block. Response headers set here (the affinity cookie,
-- added headers) are sent together with the backend's; routes that must see the backend's headers or
-- retry continue in the named location @np_full, which has a header filter. Backends spoken to in
-- another protocol (HTTPS, gRPC, a TLS profile) continue in that protocol's location, which has one too.
-- Routes with a connection limit continue in @np_conn (which also has a log phase, to give the slot
-- back), WAF routes in their profile's location; those proxy over plain HTTP only.
function _M.access(port)
    local gen = dict:get("gen") or 0
    local name = vhost_name(port, var.host or "", gen)
    local vh = name and docs.get(VHOST, name, gen, _M.compile_vhost)
    if not vh then
        return reject(404, "no-route")
    end
    req_args, req_method = nil, nil
    local route = first_match(vh)
    if not route then
        return reject(404, "no-route")
    end
    -- Whatever the answer from here on (a redirect, a 503), the access log and the metrics name the route.
    var.np_route = route.log_key
    if route.req_filters then
        run_filters(route.req_filters)
    end
    local group = route.group
    local peer, backend, cookie
    if group then
        if route.canaries then
            group = choose_canary(route.canaries, group, gen)
        end
        peer, backend, cookie = balancer.pick(group, gen)
    end
    if not peer then
        return reject(503, "no-endpoints")
    end
    if cookie then
        add_cookie(cookie)
    end
    local location = backend.location
    if location and route.location then
        -- The renderer never sends a WAF or connection-limited route to such a backend; a pushed document
        -- that does gets an error rather than a request past its WAF or limit.
        ngx.log(ngx.ERR, "netplane: route ", route.id, ": WAF or connection limit towards a non-HTTP backend")
        return reject(502, "limit-or-waf-needs-http-backend")
    end
    local conn = route.conn_limit
    if conn and not acquire(conn) then
        return reject(conn.status, "connection-limit")
    end
    -- The group rides along only when a canary took the request (retries stay in it): a fifth slot on
    -- every request measured ≈ 300 instructions more under callgrind.
    if group == route.group then
        balancer.hand_over({ route, peer, backend, gen })
    else
        -- The access log and the metrics name the canary (only canary requests pay for this).
        var.np_route = route.canary_keys[group]
        balancer.hand_over({ route, peer, backend, gen, group })
    end
    if location then
        return ngx.exec(location)
    end
    if route.full then
        return ngx.exec(route.location or "@np_full")
    end
end

-- log_by_lua of @np_conn and the WAF locations.
_M.log = limits.release

-- header_filter_by_lua of the named locations: response filters that act on the backend's headers.
function _M.header_filter()
    local state = balancer.take()
    local filters_list = state and state[1].resp_filters
    if filters_list then
        run_filters(filters_list)
    end
end

return _M
