-- wrk script: a realistic API mix (JSON reads, logins with JSON bodies, listings,
-- writes, static downloads of several sizes) for the replay benchmark capture.
local counter = 0
-- WRK_DELAY_MS=N: each connection waits N ms before its next request, so the load
-- stays below what tcpdump can write without drops on a small machine.
local pace = tonumber(os.getenv("WRK_DELAY_MS") or "0") or 0
if pace > 0 then
  delay = function()
    return pace
  end
end
local login = '{"username":"user%d","password":"not-the-password-%d"}'
local order = '{"item":"sku-%d","qty":%d,"note":"deliver to the back door"}'

request = function()
  counter = counter + 1
  local n = counter % 20
  local id = counter % 5000
  if n < 8 then
    return wrk.format("GET", "/api/users/" .. id, { ["Accept"] = "application/json" })
  elseif n < 10 then
    return wrk.format("POST", "/api/login", { ["Content-Type"] = "application/json" },
      string.format(login, id, counter))
  elseif n < 12 then
    return wrk.format("GET", "/api/orders?page=" .. (id % 40), nil)
  elseif n < 13 then
    return wrk.format("POST", "/api/orders", { ["Content-Type"] = "application/json" },
      string.format(order, id, n))
  elseif n < 17 then
    return wrk.format("GET", "/static/8k.bin", nil)
  elseif n < 19 then
    return wrk.format("GET", "/static/32k.bin", nil)
  else
    return wrk.format("GET", "/static/128k.bin", nil)
  end
end
