-- A ticket's page in the portal: a random one of the bench requester's own tickets (BENCH_PORTAL_TICKETS).
local tickets = {}

init = function(args)
  seed_random()
  for id in string.gmatch(os.getenv("BENCH_PORTAL_TICKETS") or "", "[^,]+") do
    table.insert(tickets, id)
  end
end

request = function()
  return wrk.format("GET", "/portal/tickets/" .. tickets[math.random(#tickets)] .. "/")
end
