-- TLS certificates chosen per SNI name during the handshake (ssl_certificate_by_lua), from documents
-- pushed like any other: {"hostnames": ["a.example", "*.example"], "certificate": "<PEM chain>",
-- "key": "<PEM key>"}. "*" as a hostname makes the certificate the default for names nothing else covers
-- and for clients that send no SNI. Without any match the listener's built-in certificate stays.
local ssl = require "ngx.ssl"
local docs = require "netplane.docs"
local valid = require "netplane.valid"

local dict = docs.dict
local check = valid.check
local CERT = docs.CERT

local _M = {}

function _M.compile_cert(doc, name)
    valid.table(doc, "certificate " .. name)
    local hostnames = {}
    for i, h in ipairs(valid.table(doc.hostnames, "hostnames")) do
        hostnames[#hostnames + 1] = valid.hostname(h, "hostnames[" .. (i - 1) .. "]")
    end
    check(#hostnames > 0, "hostnames", "must not be empty")
    local cert, err = ssl.parse_pem_cert(valid.string(doc.certificate, "certificate"))
    check(cert, "certificate", "cannot be parsed: " .. tostring(err))
    local key, kerr = ssl.parse_pem_priv_key(valid.string(doc.key, "key"))
    check(key, "key", "cannot be parsed: " .. tostring(kerr))
    return { hostnames = hostnames, cert = cert, key = key }
end

function _M.select()
    local sni = ssl.server_name()
    local name
    if sni then
        sni = sni:lower()
        name = docs.lookup_host(docs.CERT_INDEX, sni)
    else
        name = dict:get(docs.CERT_INDEX .. "*")
    end
    local c = name and docs.get(CERT, name, docs.generation(), _M.compile_cert)
    if not c then
        return
    end
    local ok, err = ssl.clear_certs()
    if ok then
        ok, err = ssl.set_cert(c.cert)
    end
    if ok then
        ok, err = ssl.set_priv_key(c.key)
    end
    if not ok then
        ngx.log(ngx.ERR, "netplane: certificate ", name, " for ", sni or "(no SNI)", " not set: ", err)
        return ngx.exit(ngx.ERROR)
    end
end

return _M
