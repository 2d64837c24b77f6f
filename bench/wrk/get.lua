-- GETs one ConfigMap over and over.
function init(args)
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("NETPLANE_TOKEN")
end
