-- Request mirroring (filter kind "mirror"): a copy of the request goes to a peer of another backend group,
-- sent from a timer after the access phase, so the client's request never waits for it; the copy's answer
-- is read and dropped. Only routes with the filter read the request body before proxying.
local balancer = require "netplane.balancer"
local docs = require "netplane.docs"
local valid = require "netplane.valid"

local ngx = ngx
local var = ngx.var
local req = ngx.req
local timer_at = ngx.timer.at
local tcp = ngx.socket.tcp
local log, WARN = ngx.log, ngx.WARN
local concat, type, pairs = table.concat, type, pairs
local find, lower = string.find, string.lower
local dict, draw = docs.dict, balancer.draw

local TIMEOUT_MS = 5000

-- Headers that describe this hop or the body's framing: the copy sets its own.
local SKIP = { connection = true, ["keep-alive"] = true, ["proxy-connection"] = true, te = true, trailer = true,
               ["transfer-encoding"] = true, upgrade = true, expect = true, ["content-length"] = true,
               ["x-forwarded-for"] = true, ["x-forwarded-proto"] = true }

local _M = {}

-- {"backend": <backend group document>, "percent": 100, "host": "mirror.example" (optional), "body": false (optional)}
function _M.compile(f, where)
    local ok, group = pcall(balancer.compile_group, valid.table(f.backend, where .. ".backend"))
    if not ok then
        error(where .. ": " .. group, 0)
    end
    local host = f.host
    if host ~= nil then
        valid.check(host ~= "", where .. ".host", "must not be empty")
        valid.header_value(host, where .. ".host")
    end
    return { group = group, percent = f.percent == nil and 100 or valid.int(f.percent, where .. ".percent", 0, 100),
             host = host, body = f.body == nil or valid.bool(f.body, where .. ".body") }
end

-- Timer: send the copy, read the answer to its end (the copy asked for Connection: close), drop it.
local function send_copy(premature, host, port, head, body)
    if premature then
        return
    end
    local sock = tcp()
    sock:settimeout(TIMEOUT_MS)
    local ok, err = sock:connect(host, port)
    if ok then
        ok, err = sock:send(body and { head, body } or head)
    end
    if ok then
        repeat
            local data
            data, err = sock:receiveany(65536)
        until not data
        if err == "closed" then
            err = nil
        end
    end
    sock:close()
    if err then
        log(WARN, "netplane: mirror copy to ", host, ":", port, ": ", err)
    end
end

local function request_body()
    req.read_body()
    local body = req.get_body_data()
    if body then
        return body
    end
    -- Larger bodies are buffered in a temporary file that nginx removes with the request: read it now.
    local path = req.get_body_file()
    local file = path and io.open(path, "rb")
    if not file then
        return nil
    end
    body = file:read("*a")
    file:close()
    return body
end

-- Request phase. The copy carries the request as the client sent it (method, original URI with its query)
-- with the headers as the filters before this one left them, like ingress-nginx's mirror-target.
function _M.request(s)
    local percent = s.percent
    if percent < 100 and (percent == 0 or draw(100) > percent) then
        return
    end
    local peer = balancer.pick(s.group, dict:get("gen") or 0)
    if not peer then
        return
    end
    local body = s.body and request_body() or nil
    local host = s.host
    local lines = { var.request_method, " ", var.request_uri, " HTTP/1.1\r\n" }
    if host then
        lines[#lines + 1] = "Host: " .. host .. "\r\n"
    end
    for name, value in pairs(req.get_headers(100, true)) do
        local key = lower(name)
        if not SKIP[key] and not (host and key == "host") then
            if type(value) == "table" then
                for i = 1, #value do
                    lines[#lines + 1] = name .. ": " .. value[i] .. "\r\n"
                end
            else
                lines[#lines + 1] = name .. ": " .. value .. "\r\n"
            end
        end
    end
    -- What nginx.conf's proxy_set_header lines give the proxied request.
    local forwarded = var.http_x_forwarded_for
    forwarded = forwarded and (forwarded .. ", " .. var.remote_addr) or var.remote_addr
    lines[#lines + 1] = "X-Forwarded-For: " .. forwarded .. "\r\nX-Forwarded-Proto: " .. var.scheme
        .. "\r\nConnection: close\r\n"
    if body then
        lines[#lines + 1] = "Content-Length: " .. #body .. "\r\n"
    end
    lines[#lines + 1] = "\r\n"
    local addr = peer.addr
    if find(addr, ":", 1, true) then
        addr = "[" .. addr .. "]"
    end
    local ok, err = timer_at(0, send_copy, addr, peer.port, concat(lines), body)
    if not ok then
        log(WARN, "netplane: mirror copy dropped: ", err)
    end
end

return _M
