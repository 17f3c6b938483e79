-- wrk script: cycles through a file of request paths (one a line), for benches/features.sh
-- and benches/tiles.sh.
--
--   wrk -t2 -c8 -d15s --latency -s benches/urls.lua http://127.0.0.1:PORT -- PATHS_FILE
--
-- Each thread walks the whole list in order, starting at its own offset (thread k at line
-- 997*k + 1, modulo the length), and wraps around, so threads do not send the same paths at
-- the same time. An optional second argument replaces the stride 997 (benches/tiles.sh passes
-- half the list's length, so that two threads start half a list apart):
--
--   wrk ... -s benches/urls.lua http://127.0.0.1:PORT -- PATHS_FILE [STRIDE]
--
-- Requests are formatted once in init(), so the script costs wrk next to nothing per request.

local threads = 0

function setup(thread)
    thread:set("thread_no", threads)
    threads = threads + 1
end

local reqs = {}
local pos = 0

function init(args)
    local file = args[1]
    if not file then
        error("urls.lua: give the paths file after --")
    end
    local f = assert(io.open(file, "r"))
    for line in f:lines() do
        if #line > 0 then
            reqs[#reqs + 1] = wrk.format("GET", line)
        end
    end
    f:close()
    if #reqs == 0 then
        error("urls.lua: no paths in " .. file)
    end
    -- thread_no is 0-based; a stride of 997 lines (prime) keeps the threads apart.
    local stride = tonumber(args[2]) or 997
    pos = (thread_no * stride) % #reqs
end

function request()
    pos = pos + 1
    if pos > #reqs then
        pos = 1
    end
    return reqs[pos]
end
