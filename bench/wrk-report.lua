-- wrk script for bench/server.ts's wrk(): `wrk -s bench/wrk-report.lua URL [-- JSON-BODY [N]]`.
-- With a body, every request is a POST of it (content-type application/json). With N, the
-- requests go round the paths URL-0 to URL-<N-1> (N tables). At the end it prints one JSON
-- line: requests, duration (µs), answers of status >= 400, socket errors and timeouts, and the
-- p50 and p99 latency (µs).

function init(args)
  if args[1] ~= nil then
    wrk.method = "POST"
    wrk.body = args[1]
    wrk.headers["Content-Type"] = "application/json"
  end
  local paths = tonumber(args[2])
  if paths ~= nil then
    local path = wrk.path
    local sent = 0
    -- Defined only with N: without request(), wrk sends one prepared request again and again.
    function request()
      sent = sent + 1
      return wrk.format(nil, path .. "-" .. (sent % paths))
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"wrk":1,"requests":%d,"durationUs":%d,"status":%d,"socket":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
