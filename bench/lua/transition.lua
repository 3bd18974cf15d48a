-- Incident transition: each thread owns a share of BENCH_INCIDENTS ("id:status", status resolved or
-- diagnosing) and moves them round-robin between resolved and diagnosing, which the lifecycle allows both ways
-- (resolved -> diagnosing reopens). A lap over ~1000 incidents takes far longer than one request, so no two
-- requests for one incident overlap, and every request is a real move.
local ids = {}
local states = {}
local position = 0

init = function(args)
  seed_random()
  wrk.headers["Content-Type"] = "application/json"
  local all = split(os.getenv("BENCH_INCIDENTS"), ",")
  for number, item in ipairs(all) do
    if (number - 1) % nthreads == index then
      local id, status = item:match("(%d+):(%a+)")
      table.insert(ids, id)
      states[id] = status
    end
  end
end

request = function()
  position = position % #ids + 1
  local id = ids[position]
  local target = states[id] == "resolved" and "diagnosing" or "resolved"
  states[id] = target
  return wrk.format("POST", "/api/v1/incidents/" .. id .. "/transition/", nil,
    '{"to": "' .. target .. '", "note": "bench"}')
end
