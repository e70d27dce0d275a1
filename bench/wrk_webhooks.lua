-- wrk script: distinct, signed WhatsApp webhooks, the way a newcomer would load wachat (issue 12
-- measures intake with wrk). Every request carries a new wamid and sender; the signature is
-- HMAC-SHA256 over the exact body with the app secret, computed per request through LuaJIT's
-- FFI into the system's OpenSSL (wrk has no crypto of its own).
--
--   WRK_SECRET=... WRK_RUN_ID=... wrk -t1 -c64 -d15s -s bench/wrk_webhooks.lua http://127.0.0.1:PORT
--
-- Environment: WRK_SECRET (required), WRK_RUN_ID [wrk] ([A-Za-z0-9_-], in every wamid),
-- WRK_BODY_BYTES [1024] (approximate body size). Prints one JSON line at the end.
local ffi = require("ffi")
ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]]
local crypto = ffi.load("libcrypto.so.3")

local path = "/api/modules/live-chat/webhooks/whatsapp"
local secret = os.getenv("WRK_SECRET") or error("WRK_SECRET must be set")
local run_id = os.getenv("WRK_RUN_ID") or "wrk"
assert(run_id:match("^[%w_-]+$") and #run_id <= 64, "WRK_RUN_ID must be 1-64 of [A-Za-z0-9_-]")
local body_bytes = tonumber(os.getenv("WRK_BODY_BYTES") or "1024")

-- What customers write (as bench/webhook_generator.cpp): a non-ASCII letter keeps the server's
-- UTF-8 path honest.
local words = { "Olá,", "preciso", "de", "ajuda", "com", "o", "meu", "pedido", "que", "ainda",
                "não", "chegou.", "Podem", "verificar", "o", "status", "da", "entrega", "por",
                "favor?" }

-- Meta's documented text message notification; %s are the sequence-derived parts.
local head = '{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":'
  .. '{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881",'
  .. '"phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Cliente %s"},'
  .. '"wa_id":"55119%s"}],"messages":[{"from":"55119%s","id":"wamid.' .. run_id .. '.%s",'
  .. '"timestamp":"%d","type":"text","text":{"body":"'
local tail = '"}}]},"field":"messages"}]}]}'
local text = ""
local i = 0
while #head + #tail + #text < body_bytes do
  text = text .. (text == "" and "" or " ") .. words[i % #words + 1]
  i = i + 1
end

local md = ffi.new("unsigned char[32]")
local md_len = ffi.new("unsigned int[1]")
local hex = {}
for b = 0, 255 do hex[b] = string.format("%02x", b) end
local digest = {}

local function sign(body)
  crypto.HMAC(crypto.EVP_sha256(), secret, #secret, body, #body, md, md_len)
  for k = 0, 31 do digest[k + 1] = hex[md[k]] end
  return "sha256=" .. table.concat(digest)
end

-- Each wrk thread numbers its own requests from its own billion: no two bodies are the same.
local started = 0
function setup(thread)
  thread:set("first", started * 1000000000)
  started = started + 1
end

local seq
function init(args)
  seq = first or 0
end

function request()
  local s = string.format("%012d", seq)
  local phone = string.format("%08d", seq % 100000000)
  seq = seq + 1
  local body = string.format(head, phone, phone, phone, s, os.time()) .. text .. tail
  return wrk.format("POST", path, { ["Content-Type"] = "application/json",
                                    ["X-Hub-Signature-256"] = sign(body) }, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local ok = summary.requests - e.status
  io.write(string.format(
    '{"tool":"wrk","run_id":"%s","requests":%d,"non_2xx":%d,"acked":%d,"duration_s":%.3f,'
      .. '"throughput_2xx_per_s":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},'
      .. '"latency_ms":{"p50":%.3f,"p90":%.3f,"p99":%.3f,"p99_9":%.3f,"max":%.3f,"mean":%.3f}}\n',
    run_id, summary.requests, e.status, ok, summary.duration / 1e6, ok / (summary.duration / 1e6),
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency:percentile(99.9) / 1e3, latency.max / 1e3, latency.mean / 1e3))
end
