-- Shared-memory layout of the engine's configuration and the per-worker cache of compiled documents.
--
-- Every document (a virtual host, a backend, a certificate) is stored as the JSON text it was pushed
-- with, beside a version number. One global generation counter moves after every committed write, so
-- a request reads a single number while nothing changes; only after it moves does a worker compare
-- the versions of the documents that request needs and recompile the ones that changed. Nothing else
-- is ever decoded.
local cjson = require "cjson.safe"

local dict = ngx.shared.np_config
local decode = cjson.decode
local byte, find, sub = string.byte, string.find, string.sub

local _M = { dict = dict }

-- Document kinds, used as key prefixes.
_M.VHOST = "vh"
_M.BACKEND = "be"
_M.CERT = "ce"

function _M.doc_key(kind, name) return "D:" .. kind .. ":" .. name end
function _M.version_key(kind, name) return "V:" .. kind .. ":" .. name end
-- The index keys a document owns (hostnames it claims), so a later push or delete can drop them.
function _M.owned_key(kind, name) return "O:" .. kind .. ":" .. name end
-- Hostname indexes: which virtual host serves a host on listener `port`, which certificate covers it.
-- A key is the index's prefix followed by the hostname.
function _M.host_index(port) return "H:" .. port .. ":" end
_M.CERT_INDEX = "C:"

-- The generation: 0 before the first write.
function _M.generation()
    return dict:get("gen") or 0
end

-- Versions come from their own counter so that the generation moves only once a write is complete:
-- a reader that sees a new generation always sees the whole write.
function _M.next_version()
    return dict:incr("seq", 1, 0)
end

function _M.commit()
    return dict:incr("gen", 1, 0)
end

-- Per-worker compiled documents: caches[kind][name] = { ver, checked (generation), value }.
local caches = { [_M.VHOST] = {}, [_M.BACKEND] = {}, [_M.CERT] = {} }

-- The compiled form of document `name`, or nil when there is none. `compile(doc, name)` raises on a
-- document it cannot compile; the control channel ran the same function before storing it, so that
-- happens only if the code changed underneath the stored data (then the document is treated as absent).
function _M.get(kind, name, gen, compile)
    local cache = caches[kind]
    local entry = cache[name]
    if entry and entry.checked == gen then
        return entry.value
    end
    local ver = dict:get(_M.version_key(kind, name))
    if not ver then
        cache[name] = nil
        return nil
    end
    if entry and entry.ver == ver then
        entry.checked = gen
        return entry.value
    end
    local doc = decode(dict:get(_M.doc_key(kind, name)) or "null")
    local ok, value = pcall(compile, doc, name)
    if not ok then
        ngx.log(ngx.ERR, "netplane: stored ", kind, " ", name, " does not compile: ", value)
        value = nil
    end
    cache[name] = { ver = ver, checked = gen, value = value }
    return value
end

-- Index key of a hostname. A wildcard that covers exactly one label (Ingress, X.509) is kept apart
-- from one that covers any number (Gateway API): "1*.example" against "*.example".
function _M.host_key(index, host, one_label)
    if one_label and byte(host, 1) == 42 and byte(host, 2) == 46 then
        return index .. "1" .. host
    end
    return index .. host
end

-- Looks `host` up in an index: the exact name, then its wildcard forms from the most to the least
-- specific ("a.b.c" → "*.b.c", "*.c"; one-label wildcards only at the first step), then "*".
function _M.lookup_host(index, host)
    local found = dict:get(index .. host)
    if found then
        return found
    end
    local from, first = 1, true
    while true do
        local dot = find(host, ".", from, true)
        if not dot then
            break
        end
        local suffix = sub(host, dot)
        found = dict:get(index .. "*" .. suffix) or (first and dict:get(index .. "1*" .. suffix))
        if found then
            return found
        end
        from, first = dot + 1, false
    end
    return dict:get(index .. "*")
end

return _M
