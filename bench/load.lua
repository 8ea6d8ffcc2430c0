-- wrk script: POST GraphQL bodies (one JSON document per line of BODIES) round-robin, with a bearer token.
-- Counts responses carrying GraphQL "errors" and prints a JSON summary (latency in microseconds).
local bodies = {}
local token = os.getenv("BENCH_TOKEN") or ""
for line in io.lines(os.getenv("BENCH_BODIES")) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
local index = 0
errors = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  index = 0
end

request = function()
  index = index % #bodies + 1
  local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
  if #token > 0 then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", "/graphql", headers, bodies[index])
end

response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then errors = errors + 1 end
end

done = function(summary, latency, requests)
  local graphql_errors = 0
  for _, thread in ipairs(threads) do graphql_errors = graphql_errors + (thread:get("errors") or 0) end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f, "socket_errors": %d, "http_errors": %d, "graphql_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, graphql_errors))
end
