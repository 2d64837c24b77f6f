-- Route filters. Each kind compiles its JSON once (when the virtual host is compiled) into a state and
-- names the phase it acts in: `request` runs in the access phase before a peer is chosen (and may end
-- the request, as a redirect does), `response` runs in the header filter, or already in the access
-- phase when its state says `early` (it only adds headers). Adding a kind means adding
-- one entry to `kinds`; unknown kinds are refused when the virtual host is pushed.
local valid = require "netplane.valid"
local cidr = require "netplane.cidr"
local mirror = require "netplane.mirror"
local limits = require "netplane.limits"

local ngx = ngx
local var = ngx.var
local re_sub, re_find = ngx.re.sub, ngx.re.find
local set_header, clear_header, set_uri = ngx.req.set_header, ngx.req.clear_header, ngx.req.set_uri
local check, fail = valid.check, valid.fail
local type, concat = type, table.concat
local contains = cidr.contains

local _M = {}

-- Path kinds of a route's match, shared with the router.
_M.ANY, _M.EXACT, _M.PREFIX, _M.REGEX, _M.STARTS_WITH = 0, 1, 2, 3, 4

-- A path modifier (used by rewrite and redirect): {"type": "full", "value": "/new"} replaces the whole
-- path; {"type": "prefix", "value": "/new"} replaces the prefix the route matched; {"type": "regex",
-- "pattern": "^/old/(.*)", "replacement": "/new/$1"} substitutes with capture groups ($1, ${name});
-- with "ignore_case": true the pattern ignores case, and with "whole": true the whole path becomes the
-- expanded replacement when the pattern matches (nginx's `rewrite`, which ingress-nginx's rewrite-target uses).
local function compile_path_modifier(m, where, route)
    valid.table(m, where)
    local kind = m.type
    if kind == "full" then
        local value = valid.path(m.value, where .. ".value")
        return function() return value end
    elseif kind == "prefix" then
        local value = valid.path(m.value, where .. ".value")
        local kind = route.kind
        check(kind == _M.PREFIX or kind == _M.STARTS_WITH or kind == _M.ANY, where,
              "a prefix replacement needs a prefix path match")
        local cut = kind == _M.ANY and 0 or #route.path
        local slash_end = value:byte(-1) == 47
        return function(uri)
            local rest = uri:sub(cut + 1)
            if slash_end and rest:byte(1) == 47 then
                rest = rest:sub(2)
            end
            local out = value .. rest
            return out ~= "" and out or "/"
        end
    elseif kind == "regex" then
        local pattern = valid.string(m.pattern, where .. ".pattern")
        local replacement = valid.string(m.replacement, where .. ".replacement")
        local flags = valid.bool(m.ignore_case, where .. ".ignore_case") and "joi" or "jo"
        local _, _, err = re_sub("", pattern, replacement, flags)
        check(not err, where, "invalid pattern or replacement: " .. tostring(err))
        if not valid.bool(m.whole, where .. ".whole") then
            return function(uri)
                local out = re_sub(uri, pattern, replacement, flags)
                return out or uri
            end
        end
        return function(uri)
            local from, to = re_find(uri, pattern, flags)
            if not from then
                return uri
            end
            -- ngx.re has no bare template expansion: substitute, then cut away the unmatched text around it.
            local out = re_sub(uri, pattern, replacement, flags)
            local expanded = out:sub(from, #out - (#uri - to))
            return expanded ~= "" and expanded or "/"
        end
    end
    fail(where .. ".type", "must be full, prefix or regex")
end

-- {"set": [{"name": "X-A", "value": "1"}], "add": [...], "remove": ["X-B"]}
local function compile_headers(f, where)
    local function pairs_of(list, w)
        local out = {}
        for i, h in ipairs(valid.optional_table(list, w) or {}) do
            local hw = w .. "[" .. (i - 1) .. "]"
            valid.table(h, hw)
            out[#out + 1] = { valid.token(h.name, hw .. ".name"), valid.header_value(h.value, hw .. ".value") }
        end
        return out
    end
    local remove = {}
    for i, name in ipairs(valid.optional_table(f.remove, where .. ".remove") or {}) do
        remove[#remove + 1] = valid.token(name, where .. ".remove[" .. (i - 1) .. "]")
    end
    local set, add = pairs_of(f.set, where .. ".set"), pairs_of(f.add, where .. ".add")
    local vars = {}
    for _, h in ipairs(add) do
        vars[h[1]] = "http_" .. h[1]:lower():gsub("-", "_")
    end
    return { set = set, add = add, remove = remove, vars = vars }
end

local function request_headers(s)
    for _, name in ipairs(s.remove) do
        clear_header(name)
    end
    for _, h in ipairs(s.set) do
        set_header(h[1], h[2])
    end
    for _, h in ipairs(s.add) do
        local old = var[s.vars[h[1]]]
        set_header(h[1], old and (old .. "," .. h[2]) or h[2])
    end
end

local function response_headers(s)
    local header = ngx.header
    for _, name in ipairs(s.remove) do
        header[name] = nil
    end
    for _, h in ipairs(s.set) do
        header[h[1]] = h[2]
    end
    for _, h in ipairs(s.add) do
        local old = header[h[1]]
        if old == nil then
            header[h[1]] = h[2]
        elseif type(old) == "table" then
            old[#old + 1] = h[2]
            header[h[1]] = old
        else
            header[h[1]] = { old, h[2] }
        end
    end
end

-- {"hostname": "new.example", "path": <path modifier>}: what the backend sees; the client is not told.
local function compile_rewrite(f, where, route)
    local s = {}
    if f.hostname ~= nil then
        s.hostname = valid.hostname(f.hostname, where .. ".hostname")
        check(s.hostname:byte(1) ~= 42, where .. ".hostname", "cannot be a wildcard")
    end
    if f.path ~= nil then
        s.path = compile_path_modifier(f.path, where .. ".path", route)
    end
    return s
end

local function rewrite(s)
    if s.hostname then
        set_header("Host", s.hostname)
    end
    if s.path then
        local uri = var.uri
        local new = s.path(uri)
        if new ~= uri then
            set_uri(new)
        end
    end
end

local DEFAULT_PORTS = { http = 80, https = 443 }

-- {"scheme": "https", "hostname": "h", "port": 8443, "path": <path modifier>, "query": "a=b", "status": 301};
-- what is not given comes from the request ("query": "" drops the request's query string). The port is left out when it is the scheme's default; a changed
-- scheme without a port means the scheme's default port (as Gateway API's RequestRedirect says).
local function compile_redirect(f, where, route)
    local s = { status = f.status == nil and 302 or valid.int(f.status, where .. ".status", 301, 308) }
    check(s.status ~= 304 and s.status ~= 305 and s.status ~= 306, where .. ".status",
          "must be 301, 302, 303, 307 or 308")
    if f.scheme ~= nil then
        s.scheme = valid.string(f.scheme, where .. ".scheme")
        check(DEFAULT_PORTS[s.scheme], where .. ".scheme", "must be http or https")
    end
    if f.hostname ~= nil then
        s.hostname = valid.hostname(f.hostname, where .. ".hostname")
        check(s.hostname:byte(1) ~= 42, where .. ".hostname", "cannot be a wildcard")
    end
    if f.port ~= nil then
        s.port = valid.int(f.port, where .. ".port", 1, 65535)
    end
    if f.path ~= nil then
        s.path = compile_path_modifier(f.path, where .. ".path", route)
    end
    if f.query ~= nil then
        s.query = valid.string(f.query, where .. ".query")
        check(not s.query:find("[%z\1-\32\127#]"), where .. ".query", "contains spaces, control characters or #")
    end
    s.strip_trailing_slash = valid.bool(f.strip_trailing_slash, where .. ".strip_trailing_slash")
    return s
end

local function redirect(s)
    local scheme = s.scheme or var.scheme
    local port = s.port
    if not port and not s.scheme then
        port = tonumber(var.server_port)
    end
    local authority = s.hostname or var.host
    if port and port ~= DEFAULT_PORTS[scheme] then
        authority = authority .. ":" .. port
    end
    local path
    if s.query then
        -- nginx's `return 301 <url>` (ingress-nginx's permanent-redirect, app-root): the query is the URL's own.
        local raw = var.request_uri
        local q = raw:find("?", 1, true)
        path = (s.path and s.path(var.uri) or (q and raw:sub(1, q - 1) or raw)) ..
               (s.query ~= "" and "?" .. s.query or "")
    elseif s.path then
        path = s.path(var.uri)
        local args = var.args
        if args and args ~= "" then
            path = path .. "?" .. args
        end
    else
        -- Unchanged means as the client sent it: still percent-encoded (the decoded $uri may hold spaces
        -- or CR/LF, which must never reach a Location header), with its query string.
        path = var.request_uri
    end
    -- ingress-nginx's HTTPS redirect drops a slash that ends the whole request URI, a lone "/" too
    -- (https://host); a slash before a query string stays.
    if s.strip_trailing_slash and path:byte(-1) == 47 then
        path = path:sub(1, -2)
    end
    return ngx.redirect(scheme .. "://" .. authority .. path, s.status)
end

-- Added response headers alone can be set before the backend answers (nginx sends them with the
-- backend's own); removing or replacing the backend's headers has to wait for them.
local function compile_response_headers(f, where)
    local s = compile_headers(f, where)
    s.early = #s.set == 0 and #s.remove == 0
    return s
end

-- {"status": 503, "body": "text"}: the answer itself, the backend is not asked.
local function compile_direct_response(f, where)
    return { status = valid.int(f.status, where .. ".status", 200, 599),
             body = f.body == nil and "" or valid.string(f.body, where .. ".body") }
end

local function direct_response(s)
    ngx.status = s.status
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(s.body)
    return ngx.exit(s.status)
end

-- {"max_age": 31536000, "include_subdomains": true, "preload": false}: Strict-Transport-Security on
-- answers over TLS only, replacing one the backend sent (so it runs on the backend's headers).
local function compile_hsts(f, where)
    local value = "max-age=" .. valid.int(f.max_age, where .. ".max_age", 0, 2147483647)
    if valid.bool(f.include_subdomains, where .. ".include_subdomains") then
        value = value .. "; includeSubDomains"
    end
    if valid.bool(f.preload, where .. ".preload") then
        value = value .. "; preload"
    end
    return { value = value }
end

local function hsts(s)
    if var.https == "on" then
        ngx.header["Strict-Transport-Security"] = s.value
    end
end

-- A list of HTTP tokens (or "*" where `star` allows it) joined as a header value; nil when empty.
local function token_list(list, where, star)
    local out = {}
    for i, t in ipairs(valid.optional_table(list, where) or {}) do
        local w = where .. "[" .. (i - 1) .. "]"
        out[#out + 1] = (star and t == "*") and t or valid.token(t, w)
    end
    return #out > 0 and concat(out, ", ") or nil
end

-- {"allow_origins": ["*"] | ["https://app.example", "https://*.example.com:8443"], "allow_methods": ["GET"],
--  "allow_headers": ["X-A"], "expose_headers": ["X-B"], "allow_credentials": false, "max_age": 600}
-- Origins compare case-insensitively and whole (ingress-nginx leaves the start unanchored); "*." stands
-- for one DNS label. An allowed origin is echoed back; "*" answers "*" whatever the Origin.
local function compile_cors(f, where)
    local s = { exact = {}, wild = {} }
    local origins = valid.table(f.allow_origins, where .. ".allow_origins")
    check(#origins > 0, where .. ".allow_origins", "must not be empty")
    for i, o in ipairs(origins) do
        local w = where .. ".allow_origins[" .. (i - 1) .. "]"
        o = valid.string(o, w):lower()
        if o == "*" then
            s.any = true
        else
            local scheme, host = o:match("^([a-z][a-z0-9+.-]*://)([a-z0-9.:*-]+)$")
            check(scheme and not host:find("*", 2, true), w, "must be *, scheme://host[:port] or scheme://*.host")
            if host:byte(1) == 42 then
                check(host:byte(2) == 46 and #host > 2, w, "a wildcard must be scheme://*.host")
                s.wild[#s.wild + 1] = { scheme, host:sub(2) }
            else
                s.exact[o] = true
            end
        end
    end
    local headers = {}
    if valid.bool(f.allow_credentials, where .. ".allow_credentials") then
        headers[#headers + 1] = { "Access-Control-Allow-Credentials", "true" }
    end
    local methods = token_list(f.allow_methods, where .. ".allow_methods", false)
    if methods then
        headers[#headers + 1] = { "Access-Control-Allow-Methods", methods }
    end
    local allow = token_list(f.allow_headers, where .. ".allow_headers", true)
    if allow then
        headers[#headers + 1] = { "Access-Control-Allow-Headers", allow }
    end
    local expose = token_list(f.expose_headers, where .. ".expose_headers", true)
    if expose then
        headers[#headers + 1] = { "Access-Control-Expose-Headers", expose }
    end
    if f.max_age ~= nil then
        headers[#headers + 1] = { "Access-Control-Max-Age", tostring(valid.int(f.max_age, where .. ".max_age", 0,
                                                                                2147483647)) }
    end
    s.headers = headers
    return s
end

-- The Access-Control-Allow-Origin value for this request, or nil when its origin is not allowed.
local function cors_origin(s)
    if s.any then
        return "*"
    end
    local origin = var.http_origin
    if not origin then
        return nil
    end
    local o = origin:lower()
    if s.exact[o] then
        return origin
    end
    local wild = s.wild
    for i = 1, #wild do
        local scheme, tail = wild[i][1], wild[i][2]
        local label_end = #o - #tail
        if label_end > #scheme and o:sub(1, #scheme) == scheme and o:sub(label_end + 1) == tail
            and not o:sub(#scheme + 1, label_end):find("[^a-z0-9-]") then
            return origin
        end
    end
    return nil
end

local function cors_headers(s, origin)
    local header = ngx.header
    header["Access-Control-Allow-Origin"] = origin
    local list = s.headers
    for i = 1, #list do
        header[list[i][1]] = list[i][2]
    end
end

-- Request phase: an OPTIONS request from an allowed origin is a preflight, answered here with 204.
local function cors_preflight(s)
    if var.request_method ~= "OPTIONS" then
        return
    end
    local origin = cors_origin(s)
    if origin then
        cors_headers(s, origin)
        return ngx.exit(204)
    end
end

-- Response phase: the backend's answer gets the allow headers (replacing any it set itself).
local function cors_response(s)
    local origin = cors_origin(s)
    if origin then
        cors_headers(s, origin)
    end
end

-- {"allow": ["10.0.0.0/8"], "deny": ["10.1.0.0/16"], "status": 403}: clients outside a non-empty allow
-- list, or inside the deny list, get `status` (ingress-nginx's allowlist/denylist-source-range).
local function compile_source_ip_access(f, where)
    local s = { status = f.status == nil and 403 or valid.int(f.status, where .. ".status", 400, 599) }
    if f.allow ~= nil then
        local allow = cidr.compile_list(f.allow, where .. ".allow")
        s.allow = #allow > 0 and allow or nil
    end
    if f.deny ~= nil then
        local deny = cidr.compile_list(f.deny, where .. ".deny")
        s.deny = #deny > 0 and deny or nil
    end
    return s
end

local function source_ip_access(s)
    local addr = var.binary_remote_addr
    if (s.allow and not contains(s.allow, addr)) or (s.deny and contains(s.deny, addr)) then
        ngx.header["X-Netplane-Reason"] = "source-ip"
        return ngx.exit(s.status)
    end
end

-- Request values a template may splice in (the IR's VarKind), as nginx variables.
local TEMPLATE_VARS = {
    ["source-ip"] = "remote_addr", host = "host", path = "uri", ["request-uri"] = "request_uri",
    method = "request_method", scheme = "scheme", ["request-id"] = "request_id", msec = "msec",
    ["time-iso8601"] = "time_iso8601", ["server-port"] = "server_port",
}
local NAMED_VARS = { header = "http_", cookie = "cookie_", query = "arg_" }

-- [{"text": "id-"}, {"var": "request-id"}, {"var": "header", "name": "X-Req"}] → list of literal
-- strings and {variable name}.
local function compile_template(list, where)
    local out = {}
    for i, p in ipairs(valid.table(list, where)) do
        local w = where .. "[" .. (i - 1) .. "]"
        valid.table(p, w)
        if p.text ~= nil then
            out[i] = valid.header_value(p.text, w .. ".text")
        else
            local kind = valid.string(p.var, w .. ".var")
            local name = TEMPLATE_VARS[kind]
            if not name then
                local prefix = NAMED_VARS[kind]
                check(prefix, w .. ".var", "unknown request value: " .. kind)
                name = valid.token(p.name, w .. ".name")
                name = prefix .. (kind == "header" and name:lower():gsub("-", "_") or name)
            end
            out[i] = { name }
        end
    end
    return out
end

local function expand(template)
    local out = {}
    for i = 1, #template do
        local p = template[i]
        out[i] = type(p) == "string" and p or (var[p[1]] or "")
    end
    return concat(out)
end

-- WAF profiles whose named locations nginx.conf has (set by init_by_lua; see config.WafProfile).
_M.waf_profiles = {}

-- {"mode": "blocking" | "detection-only", "owasp_crs": false, "request_body": true,
--  "transaction_id": <template>}: the request continues in the named location of its profile, where
-- ModSecurity runs with netplane's rules file for that profile. A profile nginx.conf lacks is refused.
local function compile_waf(f, where, route)
    local mode = f.mode == nil and "detection-only" or valid.string(f.mode, where .. ".mode")
    check(mode == "blocking" or mode == "detection-only", where .. ".mode", "must be blocking or detection-only")
    local body = f.request_body == nil or valid.bool(f.request_body, where .. ".request_body")
    local name = (mode == "blocking" and "block" or "detect") .. (valid.bool(f.owasp_crs, where .. ".owasp_crs")
        and "-crs" or "") .. (body and "" or "-nobody")
    check(_M.waf_profiles[name], where, "WAF profile " .. name .. " is not configured in this engine")
    check(route.location == nil, where, "one waf filter per route")
    route.location = "@np_waf_" .. name:gsub("-", "_")
    return { txid = f.transaction_id ~= nil and compile_template(f.transaction_id, where .. ".transaction_id") }
end

-- The transaction id ModSecurity logs ($np_waf_txid in the WAF locations): the template, or the request id.
local function waf(s)
    var.np_waf_txid = s.txid and expand(s.txid) or var.request_id
end

local kinds = {
    cors = { compile = compile_cors, request = cors_preflight, response = cors_response },
    hsts = { compile = compile_hsts, response = hsts },
    mirror = { compile = mirror.compile, request = mirror.request },
    source_ip_access = { compile = compile_source_ip_access, request = source_ip_access },
    rate_limit = { compile = limits.compile, request = limits.request },
    waf = { compile = compile_waf, request = waf },
    direct_response = { compile = compile_direct_response, request = direct_response },
    request_headers = { compile = compile_headers, request = request_headers },
    response_headers = { compile = compile_response_headers, response = response_headers },
    rewrite = { compile = compile_rewrite, request = rewrite },
    redirect = { compile = compile_redirect, request = redirect },
}

-- Compiles a route's filter list into two ordered lists of {fn, state}: request phase and response phase
-- (nil when empty, so the hot path can skip them with one test).
function _M.compile(list, route)
    local req, resp = {}, {}
    for i, f in ipairs(valid.table(list, "filters")) do
        local where = "filters[" .. (i - 1) .. "]"
        valid.table(f, where)
        local kind = kinds[f.type]
        check(kind, where .. ".type", "unknown filter: " .. tostring(f.type))
        local state = kind.compile(f, where, route)
        if kind.request then
            req[#req + 1] = { kind.request, state }
        end
        if kind.response and state.early then
            req[#req + 1] = { kind.response, state }
        elseif kind.response then
            resp[#resp + 1] = { kind.response, state }
        end
    end
    return #req > 0 and req or nil, #resp > 0 and resp or nil
end

function _M.run(list)
    for i = 1, #list do
        local f = list[i]
        f[1](f[2])
    end
end

return _M
