-- The control channel (content handler of the unix-socket server): documents are PUT, read and
-- DELETEd under /v1/{vhosts,backends,certificates}/<url-escaped name>. A document is compiled with the
-- very function the workers use before anything is stored, so a refused push changes nothing and
-- the running configuration keeps serving. GET /v1/status answers the generation.
--
-- Writes are expected from one client at a time (the engine); each document is replaced whole.
local cjson = require "cjson.safe"
local docs = require "netplane.docs"
local router = require "netplane.router"
local balancer = require "netplane.balancer"
local certs = require "netplane.certs"
local metrics = require "netplane.metrics"

local ngx = ngx
local dict = docs.dict

local _M = {}

local collections = {
    vhosts = {
        kind = docs.VHOST,
        compile = router.compile_vhost,
        index = function(vh)
            local keys = {}
            for _, port in ipairs(vh.ports) do
                local index = docs.host_index(port)
                for _, host in ipairs(vh.hostnames) do
                    keys[#keys + 1] = docs.host_key(index, host, vh.one_label)
                end
            end
            return keys
        end,
    },
    backends = { kind = docs.BACKEND, compile = balancer.compile_backend },
    certificates = {
        kind = docs.CERT,
        compile = certs.compile_cert,
        index = function(c)
            local keys = {}
            for _, host in ipairs(c.hostnames) do
                keys[#keys + 1] = docs.host_key(docs.CERT_INDEX, host, true)
            end
            return keys
        end,
    },
}

local function respond(status, body)
    ngx.status = status
    ngx.header["Content-Type"] = "application/json"
    ngx.print(cjson.encode(body))
    return ngx.exit(status)
end

local function read_body()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body then
        return body
    end
    local file = ngx.req.get_body_file()
    if not file then
        return nil
    end
    local f = io.open(file, "rb")
    if not f then
        return nil
    end
    body = f:read("*a")
    f:close()
    return body
end

local function stored(key, value)
    local ok, err = dict:safe_set(key, value)
    if not ok then
        error("shared memory: " .. tostring(err), 0)
    end
end

local function put(c, name)
    local body = read_body()
    if not body then
        return respond(400, { error = "empty body" })
    end
    local doc, err = cjson.decode(body)
    if doc == nil then
        return respond(400, { error = "invalid JSON: " .. tostring(err) })
    end
    local ok, compiled = pcall(c.compile, doc, name)
    if not ok then
        return respond(400, { error = tostring(compiled) })
    end
    local keys = c.index and c.index(compiled) or {}
    for _, key in ipairs(keys) do
        local owner = dict:get(key)
        if owner and owner ~= name then
            local shown = key:match("^[^:]+:(.*)$"):gsub("1%*%.", "*.")
            return respond(409, { error = shown .. " already belongs to " .. owner })
        end
    end
    local kind = c.kind
    local old = cjson.decode(dict:get(docs.owned_key(kind, name)) or "[]") or {}
    local version = docs.next_version()
    local wrote, werr = pcall(function()
        stored(docs.doc_key(kind, name), body)
        stored(docs.version_key(kind, name), version)
        stored(docs.owned_key(kind, name), cjson.encode(keys))
        local keep = {}
        for _, key in ipairs(keys) do
            keep[key] = true
            stored(key, name)
        end
        for _, key in ipairs(old) do
            if not keep[key] and dict:get(key) == name then
                dict:delete(key)
            end
        end
    end)
    -- Whatever was written is committed either way, so workers never keep a half-seen state cached.
    local gen = docs.commit()
    if not wrote then
        return respond(507, { error = tostring(werr), generation = gen })
    end
    return respond(200, { generation = gen, version = version })
end

local function delete(c, name)
    local kind = c.kind
    if not dict:get(docs.version_key(kind, name)) then
        return respond(404, { error = "not found" })
    end
    for _, key in ipairs(cjson.decode(dict:get(docs.owned_key(kind, name)) or "[]") or {}) do
        if dict:get(key) == name then
            dict:delete(key)
        end
    end
    dict:delete(docs.version_key(kind, name))
    dict:delete(docs.doc_key(kind, name))
    dict:delete(docs.owned_key(kind, name))
    return respond(200, { generation = docs.commit() })
end

-- GET /v1/metrics: the request counters (see metrics.lua), after a first line "generation\t<g>".
local function serve_metrics(method)
    if method ~= "GET" then
        return respond(405, { error = "method not allowed" })
    end
    ngx.header["Content-Type"] = "text/plain"
    ngx.print("generation\t", docs.generation(), "\n", metrics.dump())
    return ngx.exit(200)
end

function _M.handle()
    local method = ngx.req.get_method()
    local path = ngx.var.request_uri:match("^[^?]*")
    if path == "/v1/status" then
        if method ~= "GET" then
            return respond(405, { error = "method not allowed" })
        end
        return respond(200, { generation = docs.generation(), worker_pid = ngx.worker.pid() })
    end
    if path == "/v1/metrics" then
        return serve_metrics(method)
    end
    local collection, raw = path:match("^/v1/(%a+)/([^/]+)$")
    local c = collections[collection]
    if not c then
        return respond(404, { error = "no such resource" })
    end
    local name = ngx.unescape_uri(raw)
    if method == "PUT" then
        return put(c, name)
    elseif method == "DELETE" then
        return delete(c, name)
    elseif method == "GET" then
        local body = dict:get(docs.doc_key(c.kind, name))
        if not body then
            return respond(404, { error = "not found" })
        end
        ngx.header["Content-Type"] = "application/json"
        ngx.print(body)
        return ngx.exit(200)
    end
    return respond(405, { error = "method not allowed" })
end

return _M
