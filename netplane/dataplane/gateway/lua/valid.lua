-- Checks shared by the compilers. A failed check raises a plain string, which the control channel
-- returns to the writer as the reason the document was refused.
local type, floor, tostring = type, math.floor, tostring
local find = string.find

local _M = {}

function _M.fail(where, msg)
    error(where .. ": " .. msg, 0)
end

function _M.check(cond, where, msg)
    if not cond then
        error(where .. ": " .. msg, 0)
    end
end

function _M.table(v, where)
    _M.check(type(v) == "table", where, "must be an object or a list")
    return v
end

function _M.optional_table(v, where)
    if v == nil then
        return nil
    end
    return _M.table(v, where)
end

function _M.string(v, where)
    _M.check(type(v) == "string", where, "must be a string")
    return v
end

function _M.int(v, where, min, max)
    _M.check(type(v) == "number" and v == floor(v), where, "must be an integer")
    _M.check(v >= min and v <= max, where, "must be within " .. min .. ".." .. max)
    return v
end

function _M.bool(v, where)
    if v == nil then
        return false
    end
    _M.check(type(v) == "boolean", where, "must be true or false")
    return v
end

-- An HTTP token (RFC 9110): header and cookie names.
function _M.token(v, where)
    _M.string(v, where)
    _M.check(#v > 0 and not find(v, "[^!#$%%&'*+.^_`|~%w%-]"), where, "is not a valid token: " .. tostring(v))
    return v
end

-- Header (or cookie attribute) values: no control characters, so nothing can split a header line.
function _M.header_value(v, where)
    _M.string(v, where)
    _M.check(not find(v, "[%z\1-\8\10-\31\127]"), where, "contains control characters")
    return v
end

-- A path sent on the wire: absolute, printable, no spaces.
function _M.path(v, where)
    _M.string(v, where)
    _M.check(v:byte(1) == 47, where, "must start with /")
    _M.check(not find(v, "[%z\1-\32\127]"), where, "contains spaces or control characters")
    return v
end

-- A lower-case DNS name, optionally with a leading "*." wildcard label, or "*" for any host.
function _M.hostname(v, where)
    _M.string(v, where)
    if v == "*" then
        return v
    end
    local body = v
    if v:sub(1, 2) == "*." then
        body = v:sub(3)
    end
    _M.check(#v <= 253 and #body > 0 and not find(body, "[^a-z0-9.%-]") and not find(body, "%.%.")
        and body:byte(1) ~= 46 and body:byte(-1) ~= 46, where, "is not a lower-case hostname: " .. v)
    return v
end

-- A list of strings (possibly empty) as a set.
function _M.string_set(v, where)
    _M.table(v, where)
    local set = {}
    for i, s in ipairs(v) do
        set[_M.string(s, where .. "[" .. (i - 1) .. "]")] = true
    end
    return set
end

return _M
