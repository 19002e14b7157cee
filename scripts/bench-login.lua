-- Password logins under a burst, for wrk: each connection is one browser that loops
-- GET /authorize (a fresh login form), POST /login with a wrong password (one Argon2id check).
-- Run with one thread per connection (wrk keeps per-thread state), e.g.
--   CLIENT_ID=… BACKOFF_MS=250 wrk -t40 -c40 -d20s -s scripts/bench-login.lua http://127.0.0.1:8080
-- Prints judged logins (401) and refused ones (429) per second. BACKOFF_MS: how long a browser
-- waits after a 429 (0: it retries at once, as an attacker would).
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  client_id = os.getenv("CLIENT_ID")
  backoff = tonumber(os.getenv("BACKOFF_MS") or "0")
  tenant = os.getenv("TENANT") or "default"
  judged, refused, other, n = 0, 0, 0, 0
  form = nil   -- {csrf, interaction, cookie} once a login form was read
  wait = 0
  authorize = "/t/" .. tenant .. "/authorize?response_type=code&client_id=" .. client_id ..
    "&redirect_uri=https%3A%2F%2Fapp.example%2Fcallback&scope=openid&state=s" ..
    "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
end

local function urlencode(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local function unescape(s)
  return (s:gsub("&#x2f;", "/"):gsub("&#x3d;", "="):gsub("&amp;", "&"))
end

function request()
  if form == nil then
    return wrk.format("GET", authorize)
  end
  n = n + 1
  local body = "csrf=" .. urlencode(form.csrf) .. "&interaction=" .. urlencode(form.interaction) ..
    "&username=bench" .. id .. "-" .. n .. "&password=not%20the%20password"
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = form.cookie,
  }
  form = nil
  return wrk.format("POST", "/t/" .. tenant .. "/login", headers, body)
end

function delay()
  local d = wait
  wait = 0
  return d
end

function response(status, headers, body)
  if posted == nil then posted = false end
  if not posted then
    -- The answer to GET /authorize: read the form.
    local csrf = body:match('name="csrf" value="([^"]*)"')
    local interaction = body:match('name="interaction" value="([^"]*)"')
    local cookie = (headers["set-cookie"] or headers["Set-Cookie"] or ""):match("^([^;]*)")
    if csrf and interaction then
      form = {csrf = unescape(csrf), interaction = unescape(interaction), cookie = cookie}
      posted = true
    else
      other = other + 1
    end
    return
  end
  posted = false
  if status == 401 then
    judged = judged + 1
  elseif status == 429 then
    refused = refused + 1
    wait = backoff
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local j, r, o = 0, 0, 0
  for _, t in ipairs(threads) do
    j = j + t:get("judged")
    r = r + t:get("refused")
    o = o + t:get("other")
  end
  local secs = summary.duration / 1e6
  io.write(string.format("judged %d (%.1f/s), refused_429 %d (%.1f/s), other %d, in %.1f s\n",
    j, j / secs, r, r / secs, o, secs))
end
