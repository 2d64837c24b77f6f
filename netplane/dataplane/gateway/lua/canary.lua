-- Canaries: alternative backend groups that take some of a route's requests (ingress-nginx canary
-- Ingresses). Only routes whose backend lists "canaries" get here; the others never pay for it.
--
-- Per request, each canary in order decides (ingress-nginx's order):
--   1. sticky: a cookie-affinity cookie that pins the client to an endpoint of the main group keeps it
--      there, one that pins it to the canary's sends it to the canary;
--   2. the header: with header_value an exact match → canary, with header_pattern a PCRE match →
--      canary, otherwise "always" → canary and "never" → main; any other value decides nothing;
--   3. the cookie: "always" → canary, "never" → main;
--   4. weight out of weight_total, at random.
-- The first canary that takes the request gets it; otherwise the main group serves.
local balancer = require "netplane.balancer"
local valid = require "netplane.valid"

local ngx = ngx
local var = ngx.var
local re_find = ngx.re.find
local check = valid.check
local pinned, cookie, draw = balancer.pinned, balancer.cookie, balancer.draw

local _M = {}

-- One canary: a backend group document plus
-- {"weight": 10, "weight_total": 100, "header": "X-Canary", "header_value": "yes" | "header_pattern": "^b",
--  "cookie": "canary", "sticky": true}
local function compile_one(c, where)
    valid.table(c, where)
    local ok, group = pcall(balancer.compile_group, c)
    if not ok then
        error(where .. ": " .. group, 0)
    end
    local total = c.weight_total == nil and 100 or valid.int(c.weight_total, where .. ".weight_total", 1, 1000000)
    local out = {
        group = group,
        total = total,
        weight = c.weight == nil and 0 or valid.int(c.weight, where .. ".weight", 0, total),
        sticky = c.sticky == nil or valid.bool(c.sticky, where .. ".sticky"),
    }
    if c.header ~= nil then
        out.header_var = "http_" .. valid.token(c.header, where .. ".header"):lower():gsub("-", "_")
    end
    if c.header_value ~= nil then
        out.header_value = valid.string(c.header_value, where .. ".header_value")
    elseif c.header_pattern ~= nil then
        local pattern = valid.string(c.header_pattern, where .. ".header_pattern")
        local _, _, err = re_find("", pattern, "jo")
        check(not err, where .. ".header_pattern", "invalid regex: " .. tostring(err))
        out.header_pattern = pattern
    end
    check(out.header_var or not (out.header_value or out.header_pattern), where .. ".header",
          "header_value and header_pattern need a header")
    if c.cookie ~= nil then
        out.cookie = valid.token(c.cookie, where .. ".cookie")
    end
    return out
end

-- The compiled canaries of a route's backend, or nil when it has none (the router's one test).
function _M.compile(list, where)
    if list == nil then
        return nil
    end
    local out = {}
    for i, c in ipairs(valid.table(list, where)) do
        out[#out + 1] = compile_one(c, where .. "[" .. (i - 1) .. "]")
    end
    return #out > 0 and out or nil
end

-- Header, cookie and weight: true sends the request to the canary, false keeps it on the main group.
local function decide(c)
    local name = c.header_var
    local v = name and var[name]
    if v then
        if c.header_value then
            if v == c.header_value then
                return true
            end
        elseif c.header_pattern then
            if re_find(v, c.header_pattern, "jo") then
                return true
            end
        elseif v == "always" then
            return true
        elseif v == "never" then
            return false
        end
    end
    name = c.cookie
    if name then
        v = cookie(name)
        if v == "always" then
            return true
        elseif v == "never" then
            return false
        end
    end
    local w = c.weight
    return w > 0 and draw(c.total) <= w
end

-- The group this request goes to: `main` or one of the canaries' groups.
function _M.choose(canaries, main, gen)
    for i = 1, #canaries do
        local c = canaries[i]
        if c.sticky then
            if pinned(main, gen) then
                return main
            end
            if pinned(c.group, gen) then
                return c.group
            end
        end
        if decide(c) then
            return c.group
        end
    end
    return main
end

return _M
