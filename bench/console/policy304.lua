-- wrk script: GET /api/v1/defender/policy with If-None-Match = the current ETag (the 304 path).
local token = os.getenv("TOKEN")
local etag = os.getenv("ETAG")
wrk.method = "GET"
wrk.path = "/api/v1/defender/policy?task=bench-task&container=app&image=bench:1&instance=bench-304&version=bench"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["If-None-Match"] = etag

done = function(summary, latency, requests)
  io.write(string.format("REQUESTS %d NON2XX %d SECONDS %.2f\n", summary.requests, summary.errors.status or 0, summary.duration / 1e6))
end
