-- wrk script: each request starts an approval-flow instance, amounts alternating
-- 5,000 and 50,000, as an operator. The token comes from the OPS_TOKEN variable.
-- approval-flow's business key is its request_id, so every wrk thread numbers its requests
-- under its own prefix: a repeated key would be a 409 key-in-use, not a start.
local counter = 0
prefix = "LOAD" -- a global: setup() gives each thread its own
local threads = 0

setup = function(thread)
    threads = threads + 1
    thread:set("prefix", "LOAD-T" .. threads)
end
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("OPS_TOKEN")

request = function()
    counter = counter + 1
    local amount = (counter % 2 == 0) and 5000 or 50000
    local body = string.format('{"input": {"request_id": "%s-%d", "amount": %d}}', prefix, counter, amount)
    return wrk.format(nil, "/v1/workflows/approval-flow/instances", nil, body)
end

local failures = 0
response = function(status, headers, body)
    if status ~= 201 then
        failures = failures + 1
        if failures <= 3 then
            io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
        end
    end
end
