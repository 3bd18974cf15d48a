-- Incident transition: each thread owns a share of BENCH_INCIDENTS ("id:status:version", status resolved or
-- diagnosing) and moves them round-robin between resolved and diagnosing, which the lifecycle allows both ways
-- (resolved -> diagnosing reopens). A lap over ~1000 incidents takes far longer than one request, so no two
-- requests for one incident overlap, and every request is a real move. Each move sends the incident's ETag in
-- If-Match ("id-version"). The status and version move only when the answer says so: the ETag of a 2xx names the
-- incident and its new version. (wrk calls request() once more than it sends, to check the script: a move counted
-- there but never sent would put every later If-Match of that incident one version ahead.)
local ids = {}
local states = {}
local versions = {}
local pending = {}
local position = 0

init = function(args)
  seed_random()
  wrk.headers["Content-Type"] = "application/json"
  local all = split(os.getenv("BENCH_INCIDENTS"), ",")
  for number, item in ipairs(all) do
    if (number - 1) % nthreads == index then
      local id, status, version = item:match("(%d+):(%a+):(%d+)")
      table.insert(ids, id)
      states[id] = status
      versions[id] = tonumber(version)
    end
  end
end

request = function()
  position = position % #ids + 1
  local id = ids[position]
  local target = states[id] == "resolved" and "diagnosing" or "resolved"
  pending[id] = target
  local headers = {}  -- wrk.format replaces wrk.headers (the token, the content type) with these: copy them
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  headers["If-Match"] = '"' .. id .. "-" .. versions[id] .. '"'
  return wrk.format("POST", "/api/v1/incidents/" .. id .. "/transition/", headers,
    '{"to": "' .. target .. '", "note": "bench"}')
end

response = function(status, headers, body)
  local id, version = (headers["ETag"] or ""):match('"(%d+)%-(%d+)"')
  if id ~= nil and status < 300 and pending[id] ~= nil then
    states[id] = pending[id]
    versions[id] = tonumber(version)
  end
end
