-- Ticket detail: a random id between 1 and BENCH_MAX_TICKET per request.
local highest

init = function(args)
  seed_random()
  highest = tonumber(os.getenv("BENCH_MAX_TICKET"))
end

request = function()
  return wrk.format("GET", "/api/v1/tickets/" .. math.random(highest) .. "/")
end
