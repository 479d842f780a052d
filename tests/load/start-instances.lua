-- wrk script: each request starts an approval-flow instance, amounts alternating
-- 5,000 and 50,000, as an operator. The token comes from the OPS_TOKEN variable.
local counter = 0
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer " .. os.getenv("OPS_TOKEN")

request = function()
    counter = counter + 1
    local amount = (counter % 2 == 0) and 5000 or 50000
    local body = string.format('{"input": {"request_id": "LOAD-%d", "amount": %d}}', counter, amount)
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
