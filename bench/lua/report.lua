-- Shared by every scenario: per-thread counters of non-2xx answers, and one machine-readable result line.
-- wrk 4.1 prints no p95 and counts only status >= 400 as errors, hence this hook.
local threads = {}

setup = function(thread)
  thread:set("index", #threads)
  thread:set("nthreads", tonumber(os.getenv("BENCH_THREADS") or "2"))
  table.insert(threads, thread)
end

non2xx = 0

response = function(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if non2xx <= 3 then
      io.stderr:write("non-2xx " .. status .. ": " .. string.sub(body or "", 1, 300) .. "\n")
    end
  end
end

done = function(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_s": %.3f, "rps": %.2f, "p50_ms": %.3f, "p95_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f, "non2xx": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, bad, e.connect, e.read, e.write, e.timeout))
end

function split(text, separator)
  local items = {}
  for item in string.gmatch(text or "", "([^" .. separator .. "]+)") do
    table.insert(items, item)
  end
  return items
end

function seed_random()
  math.randomseed(os.time() * 1000 + (index or 0) * 7919)
end
