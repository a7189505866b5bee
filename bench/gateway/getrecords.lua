-- wrk script: GetRecords, repeated (body from BENCH_BODY, see kinesis.lua; run.py sets BENCH_*).
local dir = os.getenv("BENCH_DIR") or "bench/gateway"
dofile(dir .. "/kinesis.lua")
kinesis_request("GetRecords")
