-- Shared by the wrk scripts of bench/gateway (putrecord.lua, putrecords.lua, getrecords.lua): a
-- Kinesis JSON 1.1 POST, repeated on every connection. Environment (run.py sets it):
--   BENCH_BODY  file holding the JSON body, or several bodies one per line: then the requests
--               cycle through them (run.py gives one PutRecord per shard, so that a 5 s run does
--               not fill one shard's ring: kinlet-gateway's shards hold 65,536 records)
--   BENCH_DATE  X-Amz-Date, e.g. 20261126T034200Z (servers refuse a date 5 minutes off)
-- The Authorization header is well formed with a dummy signature: kinlet-gateway without
-- --credentials and kinesalite both accept any well-formed signature.
function kinesis_request(target)
  local body_file = assert(os.getenv("BENCH_BODY"), "BENCH_BODY not set")
  local date = assert(os.getenv("BENCH_DATE"), "BENCH_DATE not set")
  local bodies = {}
  for line in io.lines(body_file) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  assert(#bodies > 0, "no body in " .. body_file)
  wrk.method = "POST"
  wrk.body = bodies[1]
  wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
  wrk.headers["X-Amz-Target"] = "Kinesis_20131202." .. target
  wrk.headers["X-Amz-Date"] = date
  wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDKINLETBENCH00000/" ..
      date:sub(1, 8) .. "/us-east-1/kinesis/aws4_request, " ..
      "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" .. string.rep("0", 64)
  if #bodies > 1 then
    -- Requests formatted once per thread; request() only picks the next.
    local requests, next_index = nil, 0
    function init(args)
      requests = {}
      for i, b in ipairs(bodies) do requests[i] = wrk.format(nil, nil, nil, b) end
    end
    function request()
      next_index = next_index % #requests + 1
      return requests[next_index]
    end
  end
end
