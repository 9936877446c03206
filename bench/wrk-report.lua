-- wrk script for bench/server.ts's wrk(): `wrk -s bench/wrk-report.lua URL [-- JSON-BODY]`.
-- With a body, every request is a POST of it (content-type application/json). At the end it
-- prints one JSON line: requests, duration (µs), answers of status >= 400, socket errors and
-- timeouts, and the p99 latency (µs).

function init(args)
  if args[1] ~= nil then
    wrk.method = "POST"
    wrk.body = args[1]
    wrk.headers["Content-Type"] = "application/json"
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"wrk":1,"requests":%d,"durationUs":%d,"status":%d,"socket":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(99)))
end
