-- wrk script: POST /api/v1/defender/audits, batches of 100 records, a unique batch_id per request.
-- Needs TOKEN (defender token) and NOW (RFC 3339) in the environment.
local token = os.getenv("TOKEN")
local now = os.getenv("NOW")
local records = {}
for i = 1, 100 do
  records[i] = string.format(
    '{"time":"%s","kind":"process","effect":"alert","rule":"sample",' ..
    '"message":"/bin/mkdir launched from /bin/dash and is explicitly blocked in the runtime rule. Full command: mkdir d%d",' ..
    '"task_family":"bench-task","task_arn":"","container":"app","image":"bench:1","pid":%d,' ..
    '"process":"/bin/mkdir","parent":"/bin/dash","command":"mkdir d%d"}', now, i, 1000 + i, i)
end
local body_records = table.concat(records, ",")
local counter = 0
-- Each wrk thread gets its own id (set by setup in the main state), so batch ids never repeat.
local threads = 0
local run = tostring(os.time())

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

request = function()
  counter = counter + 1
  local id = run .. '-' .. tostring(tid) .. '-' .. counter
  local body = '{"batch_id":"bench-' .. id .. '",' ..
    '"defender":{"task":"bench-task","container":"app","image":"bench:1","instance":"bench-' .. tostring(tid) .. '","version":"bench"},' ..
    '"records":[' .. body_records .. ']}'
  return wrk.format("POST", "/api/v1/defender/audits",
    { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end

done = function(summary, latency, requests)
  local non2xx = (summary.errors.status or 0)
  io.write(string.format("BATCHES %d NON2XX %d SECONDS %.2f\n", summary.requests, non2xx, summary.duration / 1e6))
end
