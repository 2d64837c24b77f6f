-- Request-rate and concurrent-connection limits per client address (ingress-nginx's limit-rps,
-- limit-rpm, limit-connections, limit-burst-multiplier and limit-allowlist), counted in the shared dict
-- np_limits so that every worker sees the same counters.
--
-- A rate is a leaky bucket in the GCRA form: one number per (zone, rate, client), the time at which
-- the bucket is empty again ("theoretical arrival time", in ms). A request is let through while that
-- time lies at most `burst` emission intervals ahead, and moves it one interval further: with all
-- requests at once, 1 + burst pass, as with nginx's `limit_req burst=B nodelay`. Only `incr` touches
-- the number, so concurrent workers never lose each other's requests; the one exception is a bucket
-- that has been empty for a while, which is reset with `set` (a race there can only let a request
-- more through, never block a client for longer).
--
-- Connections are a counter per (zone, client), taken after the peer is chosen and given back in the
-- log phase of the named location the request continues in (only limited routes pay for a log phase).
-- Keys are evicted least-recently-used when the dict is full, like nginx's limit zones.
local valid = require "netplane.valid"
local cidr = require "netplane.cidr"
local balancer = require "netplane.balancer"

local ngx = ngx
local var = ngx.var
local now = ngx.now
local dict = ngx.shared.np_limits
local in_ranges = cidr.contains
local request_key = balancer.request_key
local check = valid.check

local UNIT_MS = { second = 1000, minute = 60000 }
local MAX = 1000000000

local _M = {}

-- {"zone": "<counters' name>", "rates": [{"limit": 10, "unit": "second" | "minute", "burst": 50}],
--  "connections": 8, "allowlist": ["10.0.0.0/8"], "status": 503, "connection_status": 503}
-- Routes (and the alternatives of one route) naming the same zone share their counters.
function _M.compile(f, where, route)
    local zone = valid.string(f.zone, where .. ".zone")
    local s = { allow = f.allowlist == nil and {} or cidr.compile_list(f.allowlist, where .. ".allowlist"),
                status = f.status == nil and 503 or valid.int(f.status, where .. ".status", 400, 599) }
    local rates = {}
    for i, r in ipairs(valid.optional_table(f.rates, where .. ".rates") or {}) do
        local w = where .. ".rates[" .. (i - 1) .. "]"
        valid.table(r, w)
        local limit = valid.int(r.limit, w .. ".limit", 1, MAX)
        local unit = UNIT_MS[r.unit]
        check(unit, w .. ".unit", "must be second or minute")
        local burst = r.burst == nil and 0 or valid.int(r.burst, w .. ".burst", 0, MAX)
        local interval = unit / limit
        rates[i] = { key = "r" .. i .. ":" .. zone .. ":", interval = interval, tolerance = burst * interval }
    end
    s.rates = #rates > 0 and rates or nil
    if f.connections ~= nil then
        check(route.conn_limit == nil, where .. ".connections", "one connection limit per route")
        route.conn_limit = {
            allow = s.allow, key = "c:" .. zone .. ":",
            max = valid.int(f.connections, where .. ".connections", 1, MAX),
            status = f.connection_status == nil and 503
                or valid.int(f.connection_status, where .. ".connection_status", 400, 599),
        }
    end
    check(s.rates or route.conn_limit, where, "needs rates or connections")
    return s
end

-- Takes one request from a rate's bucket; false when the bucket is full (nothing is taken then).
local function take(r, addr, t)
    local key = r.key .. addr
    local interval = r.interval
    local tat, err = dict:incr(key, interval, t)
    if not tat then
        ngx.log(ngx.ERR, "netplane: rate limit counters: ", err)
        return true
    end
    if tat - interval < t then
        tat = t + interval
        dict:set(key, tat)
    end
    if tat - interval - t > r.tolerance then
        dict:incr(key, -interval)
        return false
    end
    return true
end

local function reject(status, reason)
    ngx.header["X-Netplane-Reason"] = reason
    return ngx.exit(status)
end

-- Request phase of the rate_limit filter: every rate must have room; a refused request counts in none.
function _M.request(s)
    local rates = s.rates
    if not rates then
        return
    end
    local addr = var.binary_remote_addr
    if in_ranges(s.allow, addr) then
        return
    end
    local t = now() * 1000
    for i = 1, #rates do
        if not take(rates[i], addr, t) then
            for j = 1, i - 1 do
                dict:incr(rates[j].key .. addr, -rates[j].interval)
            end
            return reject(s.status, "rate-limit")
        end
    end
end

-- Connections held by requests of this worker, by request address, until their log phase.
local held = {}

-- Takes a connection slot for the current request (after its peer is chosen, just before it moves to
-- the named location whose log phase calls `release`); false when the client has `max` already.
function _M.acquire(c)
    local addr = var.binary_remote_addr
    if in_ranges(c.allow, addr) then
        return true
    end
    local key = c.key .. addr
    local n, err = dict:incr(key, 1, 0)
    if not n then
        ngx.log(ngx.ERR, "netplane: connection limit counters: ", err)
        return true
    end
    if n > c.max then
        dict:incr(key, -1)
        return false
    end
    held[request_key()] = key
    return true
end

-- log_by_lua of the named locations of limited routes.
function _M.release()
    local r = request_key()
    local key = held[r]
    if key then
        held[r] = nil
        dict:incr(key, -1)
    end
end

return _M
