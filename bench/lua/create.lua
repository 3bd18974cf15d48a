-- Ticket create: POST a new ticket as the signed-in agent, with a title and a description drawn from the
-- seeded database's text (BENCH_TITLES, BENCH_DESCRIPTIONS, "|"-separated), so new tickets read like the others
-- and do not skew the search scenario, and a random priority and service; to BENCH_PATH (the API or the minimal
-- DRF view).
local services, titles, descriptions, path
local priorities = {"low", "medium", "medium", "high", "critical"}

init = function(args)
  seed_random()
  services = split(os.getenv("BENCH_SERVICES"), ",")
  titles = split(os.getenv("BENCH_TITLES"), "|")
  descriptions = split(os.getenv("BENCH_DESCRIPTIONS"), "|")
  path = os.getenv("BENCH_PATH") or "/api/v1/tickets/"
  wrk.headers["Content-Type"] = "application/json"
end

request = function()
  local body = string.format(
    '{"title": "%s", "description": "%s", "priority": "%s", "category": "request", "service": %s}',
    titles[math.random(#titles)], descriptions[math.random(#descriptions)],
    priorities[math.random(#priorities)], services[math.random(#services)])
  return wrk.format("POST", path, nil, body)
end
