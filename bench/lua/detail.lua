-- Ticket detail: a random id between 1 and BENCH_MAX_TICKET per request, under BENCH_PATH (the API's or the
-- minimal DRF view's).
local highest, path

init = function(args)
  seed_random()
  highest = tonumber(os.getenv("BENCH_MAX_TICKET"))
  path = os.getenv("BENCH_PATH") or "/api/v1/tickets/"
end

request = function()
  return wrk.format("GET", path .. math.random(highest) .. "/")
end
