-- Backends (named endpoint sets, pushed on their own) and the backend group of a route: which peer a
-- request goes to, and the balancer phase that hands that peer to nginx, with retries and timeouts.
--
-- A group splits traffic between its backends by weight; its policy then picks an endpoint inside the
-- chosen backend. Everything is per worker: round-robin counters and hash rings live in the compiled
-- backend and are rebuilt only when that backend's document changes.
local ffi = require "ffi"
local ngx_balancer = require "ngx.balancer"
local get_request = require("resty.core.base").get_request
local docs = require "netplane.docs"
local valid = require "netplane.valid"

local ngx = ngx
local var = ngx.var
local crc32 = ngx.crc32_long
local tohex = bit.tohex
local cast, uintptr_t = ffi.cast, ffi.typeof("uintptr_t")
local floor, min = math.floor, math.min
local sort = table.sort
local find, byte = string.find, string.byte
local check, fail = valid.check, valid.fail
local set_current_peer, set_more_tries, set_timeouts =
    ngx_balancer.set_current_peer, ngx_balancer.set_more_tries, ngx_balancer.set_timeouts

local BACKEND = docs.BACKEND
local RING_POINTS = 40        -- hash ring points per unit of endpoint weight
local RING_MAX_POINTS = 4000  -- per endpoint, so one heavy endpoint cannot blow up a ring

local RR, COOKIE, SOURCE_IP, HASH = 1, 2, 3, 4

local _M = {}

local function is_ip(s)
    if find(s, "^%d+%.%d+%.%d+%.%d+$") then
        for part in s:gmatch("%d+") do
            if tonumber(part) > 255 then
                return false
            end
        end
        return true
    end
    return find(s, ":", 1, true) ~= nil and not find(s, "[^%x:.]")
end

-- Upstream TLS profiles of the running nginx.conf (set by its init_by_lua): id → true.
local tls_profiles = {}

function _M.set_tls_profiles(ids)
    tls_profiles = {}
    for _, id in ipairs(ids) do
        tls_profiles[id] = true
    end
end

-- The named location a backend's requests continue in: nil for plain HTTP (the listener's own location),
-- else one per protocol, and per protocol and TLS profile (see upstreams.py).
local PROTOCOLS = { http = true, https = true, grpc = true, grpcs = true }

local function compile_location(doc)
    local protocol = doc.protocol == nil and "http" or valid.string(doc.protocol, "protocol")
    check(PROTOCOLS[protocol], "protocol", "must be http, https, grpc or grpcs")
    if doc.tls == nil then
        return protocol ~= "http" and ("@np_" .. protocol) or nil
    end
    local id = valid.string(doc.tls, "tls")
    check(protocol == "https" or protocol == "grpcs", "tls", "needs protocol https or grpcs")
    check(tls_profiles[id], "tls", "no upstream TLS profile " .. id .. " in this nginx.conf")
    return "@np_" .. protocol .. "_" .. id
end

-- Backend document: {"endpoints": [{"address": "10.0.0.1", "port": 8080, "weight": 1}, ...],
-- "protocol": "http" | "https" | "grpc" | "grpcs", "tls": "<profile id>"}.
-- Endpoints with weight 0 are kept out of rotation (draining).
function _M.compile_backend(doc, name)
    valid.table(doc, "backend " .. name)
    local location = compile_location(doc)
    local eps = valid.table(doc.endpoints, "endpoints")
    local peers, tokens, total, uniform, first = {}, {}, 0, true, nil
    for i, ep in ipairs(eps) do
        local where = "endpoints[" .. (i - 1) .. "]"
        valid.table(ep, where)
        local addr = valid.string(ep.address, where .. ".address")
        check(is_ip(addr), where .. ".address", "must be an IP address: " .. addr)
        local port = valid.int(ep.port, where .. ".port", 1, 65535)
        local weight = ep.weight == nil and 1 or valid.int(ep.weight, where .. ".weight", 0, 10000)
        if weight > 0 then
            local key = addr .. ":" .. port
            local peer = { addr = addr, port = port, weight = weight, cw = 0, token = tohex(crc32(key)) }
            peers[#peers + 1] = peer
            tokens[peer.token] = peer
            total = total + weight
            first = first or weight
            uniform = uniform and weight == first
        end
    end
    return { peers = peers, n = #peers, tokens = tokens, total = total, uniform = uniform, idx = 0,
             location = location }
end

local function backend(name, gen)
    return docs.get(BACKEND, name, gen, _M.compile_backend)
end

-- Smooth weighted round robin (every peer gets its share, evenly interleaved); plain rotation when all
-- weights are equal. `skip` excludes peers already tried by this request.
local function rr_pick(b, skip)
    local peers, n = b.peers, b.n
    if b.uniform and not skip then
        local i = b.idx % n + 1
        b.idx = i
        return peers[i]
    end
    local best, best_cw, total = nil, nil, 0
    for i = 1, n do
        local p = peers[i]
        if not (skip and skip[p]) then
            p.cw = p.cw + p.weight
            total = total + p.weight
            if not best or p.cw > best_cw then
                best, best_cw = p, p.cw
            end
        end
    end
    if best then
        best.cw = best.cw - total
    end
    return best
end

local function ring(b)
    local r = b.ring
    if r then
        return r
    end
    local points, owner = {}, {}
    for i = 1, b.n do
        local p = b.peers[i]
        local key = p.addr .. ":" .. p.port .. "#"
        for j = 1, min(p.weight * RING_POINTS, RING_MAX_POINTS) do
            local h = crc32(key .. j)
            points[#points + 1] = h
            owner[h] = p
        end
    end
    sort(points)
    r = { points = points, owner = owner, n = #points }
    b.ring = r
    return r
end

-- Consistent hashing: the first ring point at or after `h` (wrapping), so a change of endpoints moves
-- only the keys of the endpoints that came or went.
local function ring_pick(b, h)
    local r = ring(b)
    local points = r.points
    local lo, hi = 1, r.n
    if h > points[hi] then
        return r.owner[points[1]]
    end
    while lo < hi do
        local mid = floor((lo + hi) / 2)
        if points[mid] < h then
            lo = mid + 1
        else
            hi = mid
        end
    end
    return r.owner[points[lo]]
end

-- The value of cookie `name` in the Cookie header(s), or nil.
local function cookie(name)
    local header = var.http_cookie
    if not header then
        return nil
    end
    local from, n = 1, #name
    while true do
        local s = find(header, name, from, true)
        if not s then
            return nil
        end
        local before = s > 1 and byte(header, s - 1) or 32
        if (before == 32 or before == 59) and byte(header, s + n) == 61 then
            local stop = find(header, ";", s + n + 1, true)
            return header:sub(s + n + 1, (stop or 0) - 1)
        end
        from = s + n
    end
end
_M.cookie = cookie

local function compile_cookie(c)
    valid.table(c, "policy.cookie")
    local name = valid.token(c.name or "np-affinity", "policy.cookie.name")
    local attrs = "; Path=" .. valid.path(c.path or "/", "policy.cookie.path")
    if c.max_age ~= nil then
        attrs = attrs .. "; Max-Age=" .. valid.int(c.max_age, "policy.cookie.max_age", 0, 2^31 - 1)
    end
    if c.same_site ~= nil then
        local s = valid.string(c.same_site, "policy.cookie.same_site")
        check(s == "Strict" or s == "Lax" or s == "None", "policy.cookie.same_site", "must be Strict, Lax or None")
        attrs = attrs .. "; SameSite=" .. s
    end
    -- "scheme": Secure on HTTPS requests only (ingress-nginx's default without session-cookie-secure).
    local by_scheme = c.secure == "scheme"
    if not by_scheme and valid.bool(c.secure, "policy.cookie.secure") then
        attrs = attrs .. "; Secure"
    end
    if c.http_only == nil or valid.bool(c.http_only, "policy.cookie.http_only") then
        attrs = attrs .. "; HttpOnly"
    end
    return name, attrs, by_scheme
end

-- The request value a "hash" policy hashes: a header, a cookie or a query argument.
local function compile_hash_source(p)
    local source = valid.string(p.source, "policy.source")
    local name = valid.token(p.name, "policy.name")
    if source == "header" then
        local variable = "http_" .. name:lower():gsub("-", "_")
        return function() return var[variable] end
    elseif source == "cookie" then
        return function() return cookie(name) end
    elseif source == "query" then
        return function()
            local v = ngx.req.get_uri_args(100)[name]
            if type(v) == "table" then
                v = v[1]
            end
            return type(v) == "string" and v or nil
        end
    end
    fail("policy.source", "must be header, cookie or query")
end

-- Backend group of a route:
-- {"policy": {"type": "round_robin" | "cookie" | "source_ip" | "hash", ...},
--  "backends": [{"name": "<backend>", "weight": 1}, ...]}
function _M.compile_group(g)
    valid.table(g, "backend")
    local refs, total = {}, 0
    for i, ref in ipairs(valid.table(g.backends, "backend.backends")) do
        local where = "backend.backends[" .. (i - 1) .. "]"
        valid.table(ref, where)
        local w = ref.weight == nil and 1 or valid.int(ref.weight, where .. ".weight", 0, 1000000)
        if w > 0 then
            refs[#refs + 1] = { name = valid.string(ref.name, where .. ".name"), weight = w, cw = 0 }
            total = total + w
        end
    end
    local group = { refs = refs, n = #refs, total = total }
    local p = valid.optional_table(g.policy, "policy") or {}
    local kind = p.type or "round_robin"
    if kind == "round_robin" then
        group.policy = RR
    elseif kind == "cookie" then
        group.policy = COOKIE
        group.cookie_name, group.cookie_attrs, group.cookie_secure_by_scheme = compile_cookie(p.cookie or {})
    elseif kind == "source_ip" then
        group.policy = SOURCE_IP
    elseif kind == "hash" then
        group.policy = HASH
        group.hash_value = compile_hash_source(p)
    else
        fail("policy.type", "unknown balancing policy: " .. tostring(kind))
    end
    return group
end

-- The backend of the group a new request goes to, by weight among those that have endpoints now.
-- `h` (hash policies) picks deterministically; otherwise smooth weighted round robin.
local function choose_backend(group, gen, h)
    local refs = group.refs
    if group.n == 1 then
        local b = backend(refs[1].name, gen)
        return b and b.n > 0 and b or nil
    end
    local live, total = {}, 0
    for i = 1, group.n do
        local b = backend(refs[i].name, gen)
        if b and b.n > 0 then
            live[#live + 1] = refs[i]
            refs[i].b = b
            total = total + refs[i].weight
        end
    end
    if total == 0 then
        return nil
    end
    if h then
        local at = h % total
        for i = 1, #live do
            at = at - live[i].weight
            if at < 0 then
                return live[i].b
            end
        end
    end
    local best
    for i = 1, #live do
        local r = live[i]
        r.cw = r.cw + r.weight
        if not best or r.cw > best.cw then
            best = r
        end
    end
    best.cw = best.cw - total
    return best.b
end

-- The endpoint a cookie-affinity group's cookie pins this request to, and its backend; nil when the
-- group has no affinity, the client holds no cookie, or its token names no current endpoint.
local function pinned(group, gen)
    if group.policy ~= COOKIE then
        return nil
    end
    local token = cookie(group.cookie_name)
    if token then
        for i = 1, group.n do
            local b = backend(group.refs[i].name, gen)
            local p = b and b.tokens[token]
            if p then
                return p, b
            end
        end
    end
    return nil
end
_M.pinned = pinned

-- Picks the peer for a new request: answers the peer, its backend and, for cookie affinity, the
-- Set-Cookie value to send (nil when the client already holds a valid one); nil when the group has no
-- endpoint at all (the caller answers 503).
function _M.pick(group, gen)
    local policy = group.policy
    local h
    if policy == SOURCE_IP then
        h = crc32(var.binary_remote_addr)
    elseif policy == HASH then
        local v = group.hash_value()
        h = v and crc32(v)
    elseif policy == COOKIE then
        local p, b = pinned(group, gen)
        if p then
            return p, b
        end
    end
    local b = choose_backend(group, gen, h)
    if not b then
        return nil
    end
    local peer = h and ring_pick(b, h) or rr_pick(b)
    if policy == COOKIE then
        local set = group.cookie_name .. "=" .. peer.token .. group.cookie_attrs
        if group.cookie_secure_by_scheme and var.https == "on" then
            set = set .. "; Secure"
        end
        return peer, b, set
    end
    return peer, b
end

-- A random integer in 1..n. Workers inherit the master's generator state, so each seeds its own on first
-- use: otherwise every worker (and every engine instance) would draw the same sequence.
local random, seeded = math.random, false

function _M.draw(n)
    if not seeded then
        math.randomseed(ngx.worker.pid() * 1000 + ngx.now() * 1000)
        seeded = true
    end
    return random(n)
end

-- Per-request state handed from the access phase to the balancer (and the header filter), keyed by
-- the address of the request. ngx.ctx would do the same at the price of a table, a registry reference
-- and a cleanup handler for every request. An entry is taken by the balancer, or by the header filter
-- for routes that need it again (retries, response filters). Entries of requests that end before either
-- runs (a client gone during its upload) are dropped by the size bound: once MAX_PENDING entries are
-- live, the table becomes the previous one, still searched, and the one before that is let go.
local MAX_PENDING = 65536
local pending, previous, live = {}, {}, 0

local function request_key()
    return tonumber(cast(uintptr_t, get_request()))
end
_M.request_key = request_key

-- state = { route, peer, backend, gen [, group] }: group only when a canary's group took the request.
function _M.hand_over(state)
    local key = request_key()
    if pending[key] == nil then
        live = live + 1
        if live > MAX_PENDING then
            previous, pending, live = pending, {}, 1
        end
    end
    pending[key] = state
end

local function find(key)
    return pending[key] or previous[key]
end

local function drop(key)
    if pending[key] ~= nil then
        pending[key] = nil
        live = live - 1
    else
        previous[key] = nil
    end
end

-- The state of the current request, removed from the hand-off table (header filter).
function _M.take()
    local key = request_key()
    local state = find(key)
    if state then
        drop(key)
    end
    return state
end

-- A retry goes to a peer this request has not tried yet: in the same backend first, then anywhere in
-- the group; when every peer has failed once, the last one is tried again.
local function retry_peer(state)
    local tried = state.tried
    if not tried then
        tried = {}
        state.tried = tried
    end
    tried[state[2]] = true
    local p = rr_pick(state[3], tried)
    if p then
        return p
    end
    local group, gen, location = state[5] or state[1].group, state[4], state[3].location
    for i = 1, group.n do
        local b = backend(group.refs[i].name, gen)
        -- Only backends of the same protocol: the request is already in that protocol's location.
        p = b and b.n > 0 and b.location == location and rr_pick(b, tried)
        if p then
            state[3] = b
            return p
        end
    end
    return state[2]
end

-- balancer_by_lua: the first try sets the route's retry budget and timeouts; later tries move on.
function _M.balance()
    local key = request_key()
    local state = find(key)
    if not state then
        ngx.log(ngx.ERR, "netplane: no routing state for this request")
        return ngx.exit(500)
    end
    local route, peer = state[1], state[2]
    if state.tries then
        peer = retry_peer(state)
        state[2] = peer
    else
        state.tries = true
        if route.retries > 0 then
            set_more_tries(route.retries)
        end
        local t = route.timeouts
        if t then
            set_timeouts(t[1], t[2], t[3])
        end
        if not route.full then
            drop(key)
        end
    end
    local ok, err = set_current_peer(peer.addr, peer.port)
    if not ok then
        ngx.log(ngx.ERR, "netplane: cannot use peer ", peer.addr, ":", peer.port, ": ", err)
        return ngx.exit(500)
    end
end

return _M
