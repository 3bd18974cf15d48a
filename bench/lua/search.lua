-- Full-text search: a random term of BENCH_TERMS (comma separated; the scenario's own set when it has one) per
-- request.
local terms

init = function(args)
  seed_random()
  terms = split(os.getenv("BENCH_TERMS"), ",")
end

request = function()
  local term = terms[math.random(#terms)]:gsub(" ", "+")
  return wrk.format("GET", "/api/v1/tickets/?search=" .. term)
end
