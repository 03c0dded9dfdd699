-- wrk script for crv: GET /v1/customers/{id} with ids picked uniformly at random from a file of
-- customer ids, one per line (the served store's ids, so every lookup hits a real customer).
-- Usage: wrk -t1 -c50 -d10s --latency -s loadtest/wrk/lookup.lua http://127.0.0.1:8080 -- ids.txt
-- wrk itself counts answers that are not 2xx/3xx ("Non-2xx or 3xx responses"); a `response`
-- callback would check more but slow wrk down, and wrk is here as the fast reference client.

local ids = {}

function init(args)
  local path = args[1]
  if path == nil then
    error("pass the ids file after --, e.g. -- ids.txt")
  end
  for line in io.lines(path) do
    ids[#ids + 1] = line
  end
  if #ids == 0 then
    error("no ids in " .. path)
  end
  -- Each thread its own sequence: threads started in the same second would share os.time().
  math.randomseed(os.time() + tonumber(tostring(ids):match("0x(%x+)") or "0", 16) % 1000003)
end

function request()
  return wrk.format("GET", "/v1/customers/" .. ids[math.random(#ids)])
end
