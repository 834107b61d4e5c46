-- wrk script: a catalogue browse mix over the store loaded at scale SCALE
-- (env, default 100). Ids are drawn with Zipf(1)-like popularity (rank r is
-- chosen with probability ~ 1/(r+1)), so a few pages are hot and most are
-- cold, as in a real shop. Mix: 5% home, 10% category, 35% product, 50% item;
-- 20% of requests carry the Japanese `lang` cookie.
local products = {
  "FI-SW-01", "FI-SW-02", "FI-FW-01", "FI-FW-02", "K9-BD-01", "K9-PO-02", "K9-DL-01", "K9-RT-01",
  "K9-RT-02", "K9-CW-01", "RP-SN-01", "RP-LI-02", "FL-DSH-01", "FL-DLH-02", "AV-CB-01", "AV-SB-02",
}
local categories = { "FISH", "DOGS", "REPTILES", "CATS", "BIRDS" }
local scale = tonumber(os.getenv("SCALE") or "100")

-- 0-based rank in [0, n) with P(rank) proportional to 1/(rank+1).
local function zipf(n)
  local r = math.floor(math.exp(math.random() * math.log(n + 1))) - 1
  if r >= n then r = n - 1 end
  return r
end

local function product_id(i)
  local base = products[(i % 16) + 1]
  local copy = math.floor(i / 16)
  if copy == 0 then return base end
  return base .. "-" .. (copy + 1)
end

local thread_counter = 0
function setup(thread)
  thread_counter = thread_counter + 1
  thread:set("seed", thread_counter)
end

function init(args)
  math.randomseed(1000 + (seed or 0))
end

function request()
  local p = math.random()
  local path
  if p < 0.05 then
    path = "/"
  elseif p < 0.15 then
    path = "/category/" .. categories[zipf(5) + 1]
  elseif p < 0.50 then
    path = "/product/" .. product_id(zipf(16 * scale))
  else
    path = "/item/EST-" .. (zipf(28 * scale) + 1)
  end
  local headers = {}
  if math.random() < 0.2 then headers["Cookie"] = "lang=ja" end
  return wrk.format("GET", path, headers)
end

local bad = 0
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("browse: %d requests, %d errors (connect %d, read %d, status %d)\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.status,
    summary.errors.connect, summary.errors.read, summary.errors.status))
end
