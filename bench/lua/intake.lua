-- Alertmanager intake: deliveries of BENCH_ALERTS_PER_DELIVERY firing alerts of one of BENCH_ALERT_GROUPS
-- groups, as Alertmanager repeats them: after the first delivery of a group every fingerprint is a duplicate.
local bodies = {}

init = function(args)
  seed_random()
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_ALERT_TOKEN")
  local groups = tonumber(os.getenv("BENCH_ALERT_GROUPS") or "200")
  local per = tonumber(os.getenv("BENCH_ALERTS_PER_DELIVERY") or "10")
  local services = split(os.getenv("BENCH_SERVICE_SLUGS"), ",")
  for group = 1, groups do
    local alerts = {}
    local service = services[(group - 1) % #services + 1]
    for number = 1, per do
      table.insert(alerts, string.format(
        '{"status": "firing", "labels": {"alertname": "BenchAlert%d", "service": "%s", "severity": "warning", ' ..
        '"instance": "host-%d:9100"}, "annotations": {"summary": "Error rate above 5%% on %s"}, ' ..
        '"startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z", ' ..
        '"generatorURL": "http://prometheus:9090/graph", "fingerprint": "bench-%04d-%03d"}',
        group, service, number, service, group, number))
    end
    bodies[group] = string.format(
      '{"version": "4", "groupKey": "{}:{alertname=\\"BenchAlert%d\\"}", "status": "firing", ' ..
      '"receiver": "itsm", "alerts": [%s]}', group, table.concat(alerts, ", "))
  end
end

request = function()
  return wrk.format("POST", "/api/v1/alerts/alertmanager/", nil, bodies[math.random(#bodies)])
end
