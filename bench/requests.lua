-- wrk script: cycle through pre-signed Twilio webhook requests.
-- Usage: wrk -s bench/requests.lua URL -- FILE
-- FILE has one request a line: path <TAB> X-Twilio-Signature <TAB> urlencoded body.
-- Each wrk thread starts at its own offset so the connections interleave calls.

local requests = {}
local index = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    local path, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    if path then
      requests[#requests + 1] = wrk.format("POST", path, {
        ["X-Twilio-Signature"] = signature,
        ["Content-Type"] = "application/x-www-form-urlencoded",
      }, body)
    end
  end
  if #requests == 0 then
    error("no requests in " .. args[1])
  end
  index = ((offset or 0) * 997) % #requests
end

function request()
  index = index % #requests + 1
  return requests[index]
end
