-- A fixed GET (list, filtered list, /health/, the ceiling views): the path comes from wrk's URL.
init = function(args)
  seed_random()
end
