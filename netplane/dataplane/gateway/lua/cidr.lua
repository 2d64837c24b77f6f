-- IP addresses and CIDR ranges, v4 and v6, compiled once into byte strings and masks so that a
-- request's address ($binary_remote_addr) is tested with string comparisons only. Shared by route
-- matches (source_ranges) and the source_ip_access filter.
local valid = require "netplane.valid"

local byte, sub, char = string.byte, string.sub, string.char
local floor = math.floor
local band, lshift = bit.band, bit.lshift
local check = valid.check

local _M = {}

local function ipv4_bytes(s)
    local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a then
        return nil
    end
    a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
    if a > 255 or b > 255 or c > 255 or d > 255 then
        return nil
    end
    return char(a, b, c, d)
end

local function ipv6_groups(part)
    local out = {}
    if part == "" then
        return out
    end
    for g in (part .. ":"):gmatch("([^:]*):") do
        if not g:find("^%x%x?%x?%x?$") then
            return nil
        end
        out[#out + 1] = tonumber(g, 16)
    end
    return out
end

local function ipv6_bytes(s)
    local head, tail = s, ""
    local gap = s:find("::", 1, true)
    if gap then
        head, tail = s:sub(1, gap - 1), s:sub(gap + 2)
        if tail:find("::", 1, true) then
            return nil
        end
    end
    local h, t = ipv6_groups(head), ipv6_groups(tail)
    if not h or not t then
        return nil
    end
    local missing = 8 - #h - #t
    if (gap and missing < 1) or (not gap and missing ~= 0) then
        return nil
    end
    local out = {}
    for _, g in ipairs(h) do
        out[#out + 1] = char(floor(g / 256), g % 256)
    end
    for _ = 1, missing do
        out[#out + 1] = "\0\0"
    end
    for _, g in ipairs(t) do
        out[#out + 1] = char(floor(g / 256), g % 256)
    end
    return table.concat(out)
end

-- "10.0.0.0/8" (or a bare address) → { prefix bytes compared whole, the mask of the partial byte after them }.
function _M.compile(s, where)
    valid.string(s, where)
    local addr, bits = s:match("^([^/]+)/(%d+)$")
    addr = addr or s
    local bytes = ipv4_bytes(addr) or ipv6_bytes(addr)
    check(bytes, where, "is not an IP address or CIDR: " .. s)
    local max = #bytes * 8
    bits = bits and tonumber(bits) or max
    check(bits <= max, where, "prefix length too long: " .. s)
    local full = floor(bits / 8)
    local rest = bits - full * 8
    return {
        len = #bytes,
        full = full,
        head = sub(bytes, 1, full),
        mask = rest > 0 and band(lshift(0xff, 8 - rest), 0xff) or 0,
        last = rest > 0 and byte(bytes, full + 1) or 0,
    }
end

-- A list of addresses or CIDRs; errors name the entry ("<where>[2]").
function _M.compile_list(list, where)
    local ranges = {}
    for i, s in ipairs(valid.table(list, where)) do
        ranges[#ranges + 1] = _M.compile(s, where .. "[" .. (i - 1) .. "]")
    end
    return ranges
end

-- Whether the binary address `addr` ($binary_remote_addr) is inside one of the compiled `ranges`.
function _M.contains(ranges, addr)
    for i = 1, #ranges do
        local r = ranges[i]
        if #addr == r.len and sub(addr, 1, r.full) == r.head
            and (r.mask == 0 or band(byte(addr, r.full + 1), r.mask) == band(r.last, r.mask)) then
            return true
        end
    end
    return false
end

return _M
